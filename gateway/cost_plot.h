#pragma once
// `frugal calibrate --plot`: cost against accuracy for every candidate cascade the
// search scored, the Pareto frontier (no cheaper cascade is as accurate), the chosen
// cascade and the reference model — one panel per request type, as a PNG.
// Drawn by a small rasteriser with a built-in 5x7 font and written with zlib, so the
// plot needs nothing installed beyond what the build links.
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace frugal::gateway {

struct PlotPanel {
  std::string title;
  std::vector<std::pair<double, double>> points;  // (cost per request in USD, accuracy 0..1)
  std::pair<double, double> chosen;
  std::optional<std::pair<double, double>> reference;
};

// The frontier of `points`: ascending cost, each strictly more accurate than the last.
std::vector<std::pair<double, double>> pareto_frontier(std::vector<std::pair<double, double>> points);

// A PNG (RGB, 8 bits) of the panels stacked vertically.
std::string render_cost_plot_png(const std::vector<PlotPanel>& panels);

// Colours, for tests that look at the pixels.
inline constexpr unsigned kPlotCandidateRgb = 0x9bb7d4;
inline constexpr unsigned kPlotFrontierRgb = 0x1f4e9c;
inline constexpr unsigned kPlotChosenRgb = 0xd62728;
inline constexpr unsigned kPlotReferenceRgb = 0x2ca02c;
inline constexpr int kPlotWidth = 760;
inline constexpr int kPlotPanelHeight = 440;

}  // namespace frugal::gateway
