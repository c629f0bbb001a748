#include "gateway/cost_plot.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace frugal::gateway {

namespace {

// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
struct Glyph {
  char c;
  uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'$', {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
};

const Glyph* glyph(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  for (const auto& g : kFont)
    if (g.c == c) return &g;
  return nullptr;
}

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(static_cast<size_t>(w) * static_cast<size_t>(h) * 3, 0xFF) {}

  void set(int x, int y, unsigned rgb) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    uint8_t* p = &px_[(static_cast<size_t>(y) * static_cast<size_t>(w_) + static_cast<size_t>(x)) * 3];
    p[0] = static_cast<uint8_t>(rgb >> 16);
    p[1] = static_cast<uint8_t>(rgb >> 8);
    p[2] = static_cast<uint8_t>(rgb);
  }
  void rect(int x0, int y0, int x1, int y1, unsigned rgb) {
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) set(x, y, rgb);
  }
  void line(int x0, int y0, int x1, int y1, unsigned rgb, int thick = 1) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
      rect(x0 - thick / 2, y0 - thick / 2, x0 + (thick - 1) / 2, y0 + (thick - 1) / 2, rgb);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  void text(int x, int y, const std::string& s, unsigned rgb) {
    for (char c : s) {
      if (const Glyph* g = glyph(c))
        for (int r = 0; r < 7; ++r)
          for (int col = 0; col < 5; ++col)
            if (g->rows[r] & (0x10 >> col)) set(x + col, y + r, rgb);
      x += 6;
    }
  }
  static int text_width(const std::string& s) { return static_cast<int>(s.size()) * 6; }

  int width() const { return w_; }
  int height() const { return h_; }
  const std::vector<uint8_t>& pixels() const { return px_; }

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

void put_u32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((v >> s) & 0xFF);
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  put_u32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

std::string encode_png(const Canvas& c) {
  std::string raw;
  const size_t stride = static_cast<size_t>(c.width()) * 3;
  raw.reserve((stride + 1) * static_cast<size_t>(c.height()));
  for (int y = 0; y < c.height(); ++y) {
    raw += '\0';  // filter: none
    raw.append(reinterpret_cast<const char*>(&c.pixels()[static_cast<size_t>(y) * stride]), stride);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
            static_cast<uLong>(raw.size()), 9);
  z.resize(zlen);
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(c.width()));
  put_u32(ihdr, static_cast<uint32_t>(c.height()));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", "");
  return png;
}

std::string fmt(const char* f, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void draw_panel(Canvas& cv, int top, const PlotPanel& p) {
  const int left = 90, right = kPlotWidth - 30, ptop = top + 46, pbottom = top + kPlotPanelHeight - 52;
  double xmax = p.chosen.first, ymin = p.chosen.second, ymax = p.chosen.second;
  auto take = [&](std::pair<double, double> q) {
    xmax = std::max(xmax, q.first);
    ymin = std::min(ymin, q.second);
    ymax = std::max(ymax, q.second);
  };
  for (const auto& q : p.points) take(q);
  if (p.reference) take(*p.reference);
  xmax = xmax > 0 ? xmax * 1.05 : 1e-6;
  ymin = std::floor(ymin * 20 - 1e-9) / 20;
  ymax = std::min(1.0, std::ceil(ymax * 20 + 1e-9) / 20);
  if (ymax - ymin < 0.05) ymin = ymax - 0.05;
  auto X = [&](double v) { return left + static_cast<int>(std::lround((v / xmax) * (right - left))); };
  auto Y = [&](double v) { return pbottom - static_cast<int>(std::lround((v - ymin) / (ymax - ymin) * (pbottom - ptop))); };

  cv.text(left, top + 10, p.title, 0x000000);
  for (int i = 0; i <= 5; ++i) {
    const double xv = xmax * i / 5, yv = ymin + (ymax - ymin) * i / 5;
    cv.line(X(xv), ptop, X(xv), pbottom, 0xE6E6E6);
    cv.line(left, Y(yv), right, Y(yv), 0xE6E6E6);
    const std::string xl = fmt("%.3g", xv), yl = fmt(ymax - ymin < 0.2 ? "%.1f%%" : "%.0f%%", yv * 100);
    cv.text(X(xv) - Canvas::text_width(xl) / 2, pbottom + 8, xl, 0x333333);
    cv.text(left - 8 - Canvas::text_width(yl), Y(yv) - 3, yl, 0x333333);
  }
  cv.line(left, pbottom, right, pbottom, 0x000000);
  cv.line(left, ptop, left, pbottom, 0x000000);
  const std::string xlabel = "COST PER REQUEST (USD)";
  cv.text((left + right - Canvas::text_width(xlabel)) / 2, pbottom + 26, xlabel, 0x000000);
  cv.text(left - 60, ptop - 16, "ACCURACY", 0x000000);

  for (const auto& q : p.points) cv.rect(X(q.first) - 1, Y(q.second) - 1, X(q.first) + 1, Y(q.second) + 1, kPlotCandidateRgb);
  const auto front = pareto_frontier(p.points);
  for (size_t i = 1; i < front.size(); ++i)
    cv.line(X(front[i - 1].first), Y(front[i - 1].second), X(front[i].first), Y(front[i].second), kPlotFrontierRgb, 2);
  for (const auto& q : front) cv.rect(X(q.first) - 2, Y(q.second) - 2, X(q.first) + 2, Y(q.second) + 2, kPlotFrontierRgb);
  if (p.reference) {
    const int rx = X(p.reference->first), ry = Y(p.reference->second);
    for (int d = -6; d <= 6; ++d) {
      cv.rect(rx + d - 1, ry - (6 - std::abs(d)), rx + d + 1, ry - (6 - std::abs(d)), kPlotReferenceRgb);
      cv.rect(rx + d - 1, ry + (6 - std::abs(d)), rx + d + 1, ry + (6 - std::abs(d)), kPlotReferenceRgb);
    }
  }
  const int cx = X(p.chosen.first), cy = Y(p.chosen.second);
  cv.rect(cx - 5, cy - 5, cx + 5, cy + 5, kPlotChosenRgb);

  // Legend, top right.
  const struct {
    unsigned rgb;
    const char* label;
  } legend[] = {{kPlotCandidateRgb, "CANDIDATE CASCADES"},
                {kPlotFrontierRgb, "FRONTIER"},
                {kPlotChosenRgb, "CHOSEN"},
                {kPlotReferenceRgb, "REFERENCE"}};
  int lx = right - 140, ly = top + 8;
  for (const auto& l : legend) {
    cv.rect(lx, ly, lx + 7, ly + 6, l.rgb);
    cv.text(lx + 12, ly, l.label, 0x000000);
    ly += 10;
  }
}

}  // namespace

std::vector<std::pair<double, double>> pareto_frontier(std::vector<std::pair<double, double>> points) {
  std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second > b.second;
  });
  std::vector<std::pair<double, double>> out;
  for (const auto& q : points)
    if (out.empty() || q.second > out.back().second) out.push_back(q);
  return out;
}

std::string render_cost_plot_png(const std::vector<PlotPanel>& panels) {
  Canvas cv(kPlotWidth, kPlotPanelHeight * static_cast<int>(std::max<size_t>(panels.size(), 1)));
  for (size_t i = 0; i < panels.size(); ++i) draw_panel(cv, static_cast<int>(i) * kPlotPanelHeight, panels[i]);
  return encode_png(cv);
}

}  // namespace frugal::gateway
