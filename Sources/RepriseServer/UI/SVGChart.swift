import Foundation

/// Charts drawn on the server as SVG: no JavaScript needed to see them; each point carries a
/// `<title>` with its exact value, shown on hover.
enum SVGChart {
    static let palette = ["#2457c5", "#d1495b", "#17803d", "#9a6700", "#7b3fbf", "#00798c", "#c25400", "#5b6574"]

    struct Series {
        var label: String
        var points: [(x: Double, y: Double)]
    }

    /// A coordinate with one decimal.
    static func f1(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Axis and hover numbers: short, but exact for integers.
    static func fmt(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e9 { return String(Int64(v)) }
        return String(format: "%.4g", v)
    }

    /// A scatter of runs by two columns.
    static func scatter(xName: String, yName: String, _ points: [(label: String, x: Double, y: Double)], width: Int = 460, height: Int = 300) -> HTML {
        let finite = points.filter { $0.x.isFinite && $0.y.isFinite }
        let head: HTML = "<figure class=\"card\" data-chart=\"scatter\" data-points=\"\(finite.count)\"><figcaption><strong>\(yName) against \(xName)</strong></figcaption>"
        guard let minX0 = finite.map(\.x).min(), let maxX0 = finite.map(\.x).max(), let minY0 = finite.map(\.y).min(), let maxY0 = finite.map(\.y).max()
        else { return head + "<p class=\"muted\">no runs have both values</p></figure>" }
        let (minX, maxX) = minX0 == maxX0 ? (minX0 - 1, maxX0 + 1) : (minX0, maxX0)
        let (minY, maxY) = minY0 == maxY0 ? (minY0 - 1, maxY0 + 1) : (minY0, maxY0)
        let l = 56.0, r = 12.0, t = 12.0, b = 36.0
        let w = Double(width) - l - r, h = Double(height) - t - b
        func px(_ x: Double) -> Double { l + (x - minX) / (maxX - minX) * w }
        func py(_ y: Double) -> Double { t + (1 - (y - minY) / (maxY - minY)) * h }
        var svg: HTML = "<svg viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"scatter of \(yName) against \(xName)\">"
        svg += "<rect x=\"\(l)\" y=\"\(t)\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"currentColor\" stroke-opacity=\".2\"/>"
        svg += "<text x=\"\(l - 4)\" y=\"\(t + 8)\" text-anchor=\"end\">\(fmt(maxY))</text><text x=\"\(l - 4)\" y=\"\(t + h)\" text-anchor=\"end\">\(fmt(minY))</text>"
        svg += "<text x=\"\(l)\" y=\"\(Double(height) - 20)\">\(fmt(minX))</text><text x=\"\(l + w)\" y=\"\(Double(height) - 20)\" text-anchor=\"end\">\(fmt(maxX))</text>"
        svg += "<text x=\"\(l + w / 2)\" y=\"\(Double(height) - 4)\" text-anchor=\"middle\">\(xName)</text>"
        for (i, p) in finite.enumerated() {
            svg += "<circle cx=\"\(f1(px(p.x)))\" cy=\"\(f1(py(p.y)))\" r=\"4\" fill=\"\(palette[i % palette.count])\" fill-opacity=\".8\">"
            svg += "<title>\(p.label): \(xName)=\(fmt(p.x)), \(yName)=\(fmt(p.y))</title></circle>"
        }
        return head + svg + "</svg></figure>"
    }

    /// Parallel coordinates: one vertical axis per column, one line per run.
    static func parallel(_ columns: [String], _ runs: [(label: String, values: [Double?])], width: Int = 720, height: Int = 280) -> HTML {
        let head: HTML = "<figure class=\"card\" data-chart=\"parallel\" data-points=\"\(runs.count)\"><figcaption><strong>Parallel coordinates</strong></figcaption>"
        guard columns.count >= 2, !runs.isEmpty else { return head + "<p class=\"muted\">choose at least two columns</p></figure>" }
        let l = 40.0, r = 40.0, t = 24.0, b = 30.0
        let w = Double(width) - l - r, h = Double(height) - t - b
        var ranges: [(Double, Double)] = []
        for c in columns.indices {
            let vs = runs.compactMap { $0.values[c] }.filter(\.isFinite)
            let lo = vs.min() ?? 0, hi = vs.max() ?? 1
            ranges.append(lo == hi ? (lo - 1, hi + 1) : (lo, hi))
        }
        func ax(_ c: Int) -> Double { l + w * Double(c) / Double(columns.count - 1) }
        func ay(_ c: Int, _ v: Double) -> Double { t + (1 - (v - ranges[c].0) / (ranges[c].1 - ranges[c].0)) * h }
        var svg: HTML = "<svg viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"parallel coordinates\">"
        for (c, name) in columns.enumerated() {
            svg += "<line x1=\"\(ax(c))\" y1=\"\(t)\" x2=\"\(ax(c))\" y2=\"\(t + h)\" stroke=\"currentColor\" stroke-opacity=\".35\"/>"
            svg += "<text x=\"\(ax(c))\" y=\"\(t - 8)\" text-anchor=\"middle\">\(name)</text>"
            svg += "<text x=\"\(ax(c))\" y=\"\(t + h + 14)\" text-anchor=\"middle\">\(fmt(ranges[c].0))–\(fmt(ranges[c].1))</text>"
        }
        for (i, run) in runs.enumerated() {
            let pts = run.values.enumerated().compactMap { c, v in v.flatMap { $0.isFinite ? String(format: "%.1f,%.1f", ax(c), ay(c, $0)) : nil } }
            svg += "<polyline fill=\"none\" stroke=\"\(palette[i % palette.count])\" stroke-width=\"1.6\" points=\"\(pts.joined(separator: " "))\"><title>\(run.label)</title></polyline>"
        }
        return head + svg + "</svg></figure>"
    }

    /// A small left-to-right graph of lineage: one column per node type, edges as lines.
    static func lineage(_ nodes: [(key: String, type: String, label: String, href: String?)], _ edges: [(String, String, String)]) -> HTML {
        // Registered models share the aliases' column, so no edge has to cross a box.
        let order = ["dataset", "run", "logged_model", "model_version", "alias", "deployment", "incident"]
        var columns: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() { columns[n.type == "registered_model" ? "alias" : n.type, default: []].append(i) }
        let used = order.filter { columns[$0] != nil }
        let colW = 210.0, rowH = 46.0
        let height = Int(Double(max(1, columns.values.map(\.count).max() ?? 1)) * rowH + 40)
        let width = Int(Double(max(1, used.count)) * colW + 20)
        var pos: [String: (Double, Double)] = [:]
        for (ci, type) in used.enumerated() {
            for (ri, ni) in (columns[type] ?? []).enumerated() { pos[nodes[ni].key] = (10 + Double(ci) * colW, 30 + Double(ri) * rowH) }
        }
        var svg: HTML = "<svg viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"lineage graph\" data-chart=\"lineage\" data-points=\"\(nodes.count)\">"
        for (ci, type) in used.enumerated() {
            let title = type == "alias" ? "alias / model" : type.replacingOccurrences(of: "_", with: " ")
            svg += "<text x=\"\(10 + Double(ci) * colW)\" y=\"14\">\(title)</text>"
        }
        for (from, to, relation) in edges {
            guard let a = pos[from], let b = pos[to] else { continue }
            svg += "<line x1=\"\(f1(a.0 + 170))\" y1=\"\(f1(a.1 + 12))\" x2=\"\(f1(b.0))\" y2=\"\(f1(b.1 + 12))\" stroke=\"currentColor\" stroke-opacity=\".45\">"
            svg += "<title>\(relation)</title></line>"
        }
        for n in nodes {
            guard let p = pos[n.key] else { continue }
            let box: HTML = "<rect x=\"\(f1(p.0))\" y=\"\(f1(p.1))\" width=\"170\" height=\"24\" rx=\"4\" fill=\"none\" stroke=\"currentColor\" stroke-opacity=\".6\"/>"
            let label = n.label.count > 26 ? String(n.label.prefix(25)) + "…" : n.label
            let text: HTML = "<text x=\"\(f1(p.0 + 6))\" y=\"\(f1(p.1 + 16))\">\(label)<title>\(n.key)</title></text>"
            svg += n.href.map { "<a href=\"\($0)\">\(box)\(text)</a>" } ?? box + text
        }
        return svg + "</svg>"
    }
}
