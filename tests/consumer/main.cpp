// Squares its share of 0..6 on each rank and prints, on the main process, every result in the
// original order, so the test can compare one line whatever the number of processes.
#include <iostream>
#include <string>
#include <vector>

#include "accel/runtime/partial_state.h"

int main() {
  accel::PartialState state;
  const std::vector<int> numbers{0, 1, 2, 3, 4, 5, 6};
  const auto mine = state.split_between_processes(numbers, /*apply_padding=*/true);
  std::vector<int> squares;
  for (int n : mine.items) squares.push_back(n * n);
  const auto all = state.gather_unpadded(squares, mine);
  if (state.is_main_process()) {
    std::cout << "squares on " << state.num_processes() << " processes:";
    for (int s : all) std::cout << ' ' << s;
    std::cout << std::endl;
  }
  return 0;
}
