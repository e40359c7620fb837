// Installed into the same prefix as accel: prints where the shipped GPT-2 vocabulary is found and
// what it makes of one phrase, so the test sees that an installed program reads the prefix's copy.
#include <iostream>

#include "accel/models/tokenizer.h"

int main() {
  const auto tokenizer = accel::models::GPT2Tokenizer::bundled();
  std::cout << "vocabulary: " << accel::models::bundled_vocabulary_dir() << "\n";
  std::cout << "Hello world:";
  for (auto id : tokenizer.encode("Hello world")) std::cout << ' ' << id;
  std::cout << std::endl;
  return 0;
}
