// llama.cpp (through npm's node-llama-cpp, its prebuilt CPU binaries) on a GGUF file, measured
// the way models_bench measures our models, for scripts/bench-llamacpp.sh:
//   node llamacpp-bench.mjs NODE_MODULES MODEL.gguf --threads N --batch B --prompt-ids "ID ..."
//        [--new-tokens 32] [--repeats 3] [--kv-type F32|F16|BF16]
// B sequences decode together (node-llama-cpp batches the sequences' steps into one llama_decode);
// row r's prompt is the given ids rotated left by r, so the rows differ. Greedy (temperature 0).
// generate(1) is the prefill alone; each further token is one decode step: decode time per step =
// (best generate(N) - best generate(1)) / (N - 1). Prints "key value" lines:
//   threads, batch, prefill_ms, generate_tokens_per_s, decode_tokens_per_s,
//   greedy_ids (row 0's generated ids, space separated)
// Nothing is downloaded or built: getLlama runs with build "never" and the prebuilt binaries.
import path from "path";

const usage = "usage: node llamacpp-bench.mjs NODE_MODULES MODEL.gguf --threads N --batch B --prompt-ids \"ID ...\" " +
  "[--new-tokens N] [--repeats N] [--kv-type F32|F16|BF16]";

function parseArgs(argv) {
  const [modules, modelPath, ...rest] = argv;
  const flags = { "--threads": "1", "--batch": "1", "--prompt-ids": "", "--new-tokens": "32", "--repeats": "3", "--kv-type": "F16" };
  if (!modules || !modelPath) throw new Error(usage);
  for (let i = 0; i < rest.length; i += 2) {
    if (!(rest[i] in flags) || i + 1 >= rest.length) throw new Error(`unknown flag or missing value: ${rest[i]}\n${usage}`);
    flags[rest[i]] = rest[i + 1];
  }
  const positive = (flag, lowest = 1) => {
    const value = Number(flags[flag]);
    if (!Number.isInteger(value) || value < lowest) throw new Error(`${flag} must be an integer >= ${lowest}, got '${flags[flag]}'`);
    return value;
  };
  const promptIds = flags["--prompt-ids"].trim().split(/\s+/).filter(Boolean).map(Number);
  if (promptIds.length === 0 || promptIds.some((id) => !Number.isInteger(id) || id < 0))
    throw new Error(`--prompt-ids must be non-negative token ids separated by spaces, got '${flags["--prompt-ids"]}'`);
  if (!["F32", "F16", "BF16"].includes(flags["--kv-type"]))
    throw new Error(`--kv-type must be F32, F16 or BF16, got '${flags["--kv-type"]}'`);
  return { modules, modelPath, threads: positive("--threads"), batch: positive("--batch"), promptIds,
    newTokens: positive("--new-tokens", 2), repeats: positive("--repeats"), kvType: flags["--kv-type"] };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { getLlama, LlamaLogLevel } = await import(path.join(path.resolve(args.modules), "node-llama-cpp/dist/index.js"));
  // maxThreads 0: the context's thread count is used as given, not shared out by node-llama-cpp.
  const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, maxThreads: 0,
    progressLogs: false, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: args.modelPath, gpuLayers: 0 });
  const perRow = args.promptIds.length + args.newTokens + 8;
  const context = await model.createContext({ sequences: args.batch, contextSize: args.batch * Math.max(256, perRow),
    batchSize: Math.max(512, args.batch * args.promptIds.length), threads: args.threads,
    experimentalKvCacheKeyType: args.kvType, experimentalKvCacheValueType: args.kvType });
  const sequences = Array.from({ length: args.batch }, () => context.getSequence());
  const prompt = (row) => args.promptIds.map((_, i) => args.promptIds[(i + row) % args.promptIds.length]);

  // Every row from an empty cache to `count` greedy tokens; seconds and each row's tokens.
  const generate = async (count) => {
    await Promise.all(sequences.map((s) => s.clearHistory()));
    const start = performance.now();
    const rows = await Promise.all(sequences.map(async (sequence, row) => {
      const tokens = [];
      for await (const token of sequence.evaluate(prompt(row), { temperature: 0 })) {
        tokens.push(token);
        if (tokens.length === count) break;
      }
      return tokens;
    }));
    return { seconds: (performance.now() - start) / 1000, rows };
  };
  const bestOf = async (count) => {
    await generate(count);  // warm-up, not counted
    let best = null;
    for (let i = 0; i < args.repeats; ++i) {
      const run = await generate(count);
      if (best === null || run.seconds < best.seconds) best = run;
    }
    return best;
  };
  const prefill = await bestOf(1);
  const whole = await bestOf(args.newTokens);
  const decodeSeconds = (whole.seconds - prefill.seconds) / (args.newTokens - 1);
  console.log(`threads ${args.threads}\nbatch ${args.batch}\nprefill_ms ${(prefill.seconds * 1e3).toFixed(1)}`);
  console.log(`generate_tokens_per_s ${(args.batch * args.newTokens / whole.seconds).toFixed(1)}`);
  console.log(`decode_tokens_per_s ${(args.batch / decodeSeconds).toFixed(1)}`);
  console.log(`greedy_ids ${whole.rows[0].join(" ")}`);
  await context.dispose();
  await model.dispose();
  await llama.dispose();
}

main().catch((error) => {
  console.error(`llamacpp-bench: ${error.message}`);
  process.exit(2);
});
