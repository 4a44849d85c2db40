// Runs the network of an xclbin (one built by fpyga.hls4ml.build, or mlp.xclbin) on host data
// with fpyga::nn_model: float in, float out, the batch over every compute unit.
//
//   nn_predict NETWORK.xclbin [INPUT.csv] [--device SPEC]... [--samples N]
//
// INPUT.csv holds one sample per line, n_inputs comma-separated numbers (lines starting with '#'
// are skipped); without it, N (default 1000) samples are drawn uniformly from [-4, 4). The
// predictions go to stdout as CSV, one line per sample; the description and timing to stderr.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fpyga/fpyga.hpp"

namespace {

std::vector<float> read_csv(const std::string& path, std::size_t per_sample) {
  std::ifstream in(path);
  if (!in) throw fpyga::error("cannot open '" + path + "'");
  std::vector<float> x;
  std::string line;
  for (std::size_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream s(line);
    std::string cell;
    std::size_t count = 0;
    while (std::getline(s, cell, ',')) {
      try {
        x.push_back(std::stof(cell));
      } catch (const std::exception&) {
        throw fpyga::value_error(path + ":" + std::to_string(lineno) + ": '" + cell +
                                 "' is not a number");
      }
      ++count;
    }
    if (count != per_sample)
      throw fpyga::value_error(path + ":" + std::to_string(lineno) + ": " + std::to_string(count) +
                               " values, the network takes " + std::to_string(per_sample));
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  std::string xclbin, csv;
  std::vector<fpyga::device> devices;
  std::size_t samples = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) {
      devices.push_back(fpyga::device::open(argv[++i]));
    } else if (a == "--samples" && i + 1 < argc) {
      samples = std::strtoull(argv[++i], nullptr, 10);
    } else if (xclbin.empty()) {
      xclbin = a;
    } else if (csv.empty()) {
      csv = a;
    } else {
      std::cerr
          << "usage: nn_predict NETWORK.xclbin [INPUT.csv] [--device SPEC]... [--samples N]\n";
      return 2;
    }
  }
  if (xclbin.empty()) {
    std::cerr << "usage: nn_predict NETWORK.xclbin [INPUT.csv] [--device SPEC]... [--samples N]\n";
    return 2;
  }
  try {
    const fpyga::nn_model model(xclbin, devices);
    const auto& net = model.info();
    std::cerr << "network '" << net.name << "' (" << net.producer << " " << net.producer_version
              << "): " << model.n_inputs() << " inputs " << net.inputs.front().type.to_string()
              << " -> " << model.n_outputs() << " outputs " << net.outputs.front().type.to_string()
              << ", " << model.compute_units() << " compute unit(s) on";
    for (const auto& d : model.devices()) std::cerr << " " << d.spec();
    std::cerr << "\n";

    std::vector<float> x;
    if (!csv.empty()) {
      x = read_csv(csv, model.n_inputs());
      samples = x.size() / model.n_inputs();
    } else {
      std::mt19937 rng(1);
      std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
      x.resize(samples * model.n_inputs());
      for (auto& v : x) v = dist(rng);
    }
    std::vector<float> y(samples * model.n_outputs());
    const auto t0 = std::chrono::steady_clock::now();
    model.predict(x.data(), samples, y.data());
    const std::chrono::duration<double, std::micro> dt = std::chrono::steady_clock::now() - t0;
    for (std::size_t s = 0; s < samples; ++s) {
      for (std::size_t o = 0; o < model.n_outputs(); ++o)
        std::cout << (o ? "," : "") << y[s * model.n_outputs() + o];
      std::cout << "\n";
    }
    std::cerr << samples << " samples in " << dt.count() << " us ("
              << (samples ? dt.count() / static_cast<double>(samples) : 0.0) << " us/sample)\n";
  } catch (const std::exception& e) {
    std::cerr << "nn_predict: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
