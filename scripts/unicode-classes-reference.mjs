// Writes how node's own regular expressions (V8 with its ICU's Unicode tables) classify every
// code point, for tests/models/test_unicode_classes.cpp:
//   node unicode-classes-reference.mjs OUT
// OUT: the Unicode version on the first line, then one byte per code point 0..0x10FFFF:
// L (\p{L}), N (\p{N}), S (\p{White_Space}), O (anything else).
import fs from "fs";

const out = Buffer.alloc(0x110000);
for (let cp = 0; cp < 0x110000; ++cp) {
  const c = String.fromCodePoint(cp);
  out[cp] = (/\p{L}/u.test(c) ? "L" : /\p{N}/u.test(c) ? "N" : /\p{White_Space}/u.test(c) ? "S" : "O").charCodeAt(0);
}
fs.writeFileSync(process.argv[2], Buffer.concat([Buffer.from(process.versions.unicode + "\n"), out]));
