#!/usr/bin/env python3
"""Renders the chat template test cases with Python's jinja2 set up as transformers sets it up.

The reference for lib/models' chat template interpreter (tests/models/test_chat_template.cpp):
jinja2's ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols
extension, a {% generation %} block (transformers' AssistantTracker renders its body as is),
raise_exception, strftime_now (at a fixed time here, so the output is reproducible) and
transformers' tojson (json.dumps with ensure_ascii=False). Needs Debian's python3-jinja2.

  chat-template-reference.py DATA_DIR            write DATA_DIR/expected.json from DATA_DIR/cases.json
  chat-template-reference.py DATA_DIR --check    exit 1 when expected.json differs from jinja2 now
  chat-template-reference.py DATA_DIR --compare OURS.json
                                                 exit 1 when OURS.json (the C++ renderings, same
                                                 shape as expected.json) differs from jinja2 now

Each case is one template x one conversation x add_generation_prompt on/off, keyed
"template/conversation/gen" or ".../nogen", or one snippet (a small template with its own
variables, keyed "snippet/name"); its value is {"text": ...} or {"error": ...}.
"""
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The time strftime_now() formats in the tests (local time), also in test_chat_template.cpp.
FIXED_NOW = 1767323045


class GenerationBlock(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %}: the body, rendered as it is."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.datetime.fromtimestamp(FIXED_NOW).strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def variables(template, conversation, add_generation_prompt):
    """What transformers passes to render(): special tokens, messages, tools, documents, extras."""
    out = dict(template.get("tokens", {}))
    out.update({k: v for k, v in conversation.items() if k not in ("messages", "tools", "documents")})
    out["messages"] = conversation["messages"]
    out["tools"] = conversation.get("tools")
    out["documents"] = conversation.get("documents")
    out["add_generation_prompt"] = add_generation_prompt
    return out


def render_all(data_dir):
    with open(os.path.join(data_dir, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    env = environment()
    results = {}
    for name, template in cases["templates"].items():
        with open(os.path.join(data_dir, "templates", template["file"]), encoding="utf-8") as f:
            source = f.read()
        compiled = env.from_string(source)
        for conversation_name, conversation in cases["conversations"].items():
            for gen in (True, False):
                key = f"{name}/{conversation_name}/{'gen' if gen else 'nogen'}"
                try:
                    results[key] = {"text": compiled.render(**variables(template, conversation, gen))}
                except Exception as e:  # the case's expected outcome is this failure
                    results[key] = {"error": f"{type(e).__name__}: {e}"}
    for name, snippet in cases.get("snippets", {}).items():
        try:
            results[f"snippet/{name}"] = {"text": env.from_string(snippet["source"]).render(**snippet["variables"])}
        except Exception as e:  # the snippet's expected outcome is this failure (or a refusal)
            results[f"snippet/{name}"] = {"error": f"{type(e).__name__}: {e}"}
    return results


def differences(expected, actual):
    problems = []
    for key in sorted(set(expected) | set(actual)):
        e, a = expected.get(key), actual.get(key)
        if e is None or a is None:
            problems.append(f"{key}: only in {'the reference' if a is None else 'the compared file'}")
        elif ("error" in e) != ("error" in a):
            problems.append(f"{key}: reference {json.dumps(e, ensure_ascii=False)[:300]}\n   compared {json.dumps(a, ensure_ascii=False)[:300]}")
        elif "text" in e and e["text"] != a["text"]:
            at = next((i for i, (x, y) in enumerate(zip(e["text"], a["text"])) if x != y), min(len(e["text"]), len(a["text"])))
            problems.append(f"{key}: texts differ at character {at}:\n   reference {e['text'][max(0, at - 40):at + 40]!r}\n"
                            f"   compared  {a['text'][max(0, at - 40):at + 40]!r}")
    return problems


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    data_dir = argv[1]
    results = render_all(data_dir)
    expected_path = os.path.join(data_dir, "expected.json")
    if len(argv) == 2:
        with open(expected_path, "w", encoding="utf-8") as f:
            json.dump(results, f, ensure_ascii=False, indent=1, sort_keys=True)
            f.write("\n")
        print(f"chat-template-reference: wrote {len(results)} renderings to {expected_path} (jinja2 {jinja2.__version__})")
        return 0
    if argv[2] == "--check":
        other_path = expected_path
    elif argv[2] == "--compare" and len(argv) == 4:
        other_path = argv[3]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    with open(other_path, encoding="utf-8") as f:
        other = json.load(f)
    problems = differences(results, other)
    for p in problems:
        print(p)
    print(f"chat-template-reference: {len(results) - len(problems)} of {len(results)} renderings equal jinja2 {jinja2.__version__}'s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
