import Foundation
import RepriseCore

/// How metric charts are drawn: the x axis, log scale, smoothing, min/max bands and the zoomed
/// range. Read from a page's query (`xaxis`, `log`, `smooth`, `band`, `from`, `to`), so every view is a
/// link, and the controls are a plain GET form that works without JavaScript.
struct ChartOptions: Sendable, Equatable {
    var axis: MetricAxis = .step
    var logY = false
    /// Exponential moving average weight, 0 (off) to 0.99.
    var smoothing = 0.0
    var band = true
    var from: Double?
    var to: Double?

    init() {}

    init(query: [String: [String]]) throws {
        func one(_ name: String) -> String? { query[name]?.last.flatMap { $0.isEmpty ? nil : $0 } }
        if let x = one("xaxis") {
            guard let a = MetricAxis(rawValue: x) else {
                throw RepriseError.invalid("xaxis must be one of \(MetricAxis.allCases.map(\.rawValue).joined(separator: ", ")); got '\(x.prefix(40))'.")
            }
            axis = a
        }
        logY = one("log") == "1"
        band = one("band") != "0"
        if let text = one("smooth") {
            guard let v = Double(text), v.isFinite, v >= 0, v <= 0.99 else {
                throw RepriseError.invalid("smooth must be a number from 0 to 0.99; got '\(text.prefix(40))'.")
            }
            smoothing = v
        }
        for (name, slot) in [("from", \ChartOptions.from), ("to", \ChartOptions.to)] {
            guard let text = one(name) else { continue }
            guard let v = Double(text), v.isFinite else { throw RepriseError.invalid("\(name) must be a finite number; got '\(text.prefix(40))'.") }
            self[keyPath: slot] = v
        }
    }

    var zoomed: Bool { from != nil || to != nil }

    /// The query parameters these options read (a page keeps its own others).
    static let parameters: Set<String> = ["xaxis", "log", "smooth", "band", "from", "to"]

    /// The controls, as a GET form keeping `keep` (the page's own parameters, such as the runs).
    func form(keep: [(String, String)], action: String = "") -> HTML {
        var h: HTML = "<form method=\"get\" class=\"inline chart-controls\" data-autosubmit action=\"\(action)\">"
        for (k, v) in keep { h += "<input type=\"hidden\" name=\"\(k)\" value=\"\(v)\">" }
        let labels: [MetricAxis: String] = [.step: "Step", .time: "Wall time", .relative: "Relative time"]
        h += "<label>X axis <select name=\"xaxis\">" + MetricAxis.allCases.map { a -> HTML in
            "<option value=\"\(a.rawValue)\"\(a == axis ? " selected" as HTML : "")>\(labels[a] ?? a.rawValue)</option>"
        }.joined() + "</select></label> "
        h += "<label><input type=\"checkbox\" name=\"log\" value=\"1\"\(logY ? " checked" as HTML : "")> Log scale</label> "
        h += "<input type=\"hidden\" name=\"band\" value=\"0\"><label><input type=\"checkbox\" name=\"band\" value=\"1\"\(band ? " checked" as HTML : "")> Min/max band</label> "
        h += "<label>Smoothing <input type=\"number\" name=\"smooth\" min=\"0\" max=\"0.99\" step=\"0.01\" value=\"\(smoothing == 0 ? "0" : String(smoothing))\" style=\"width:5rem\"></label> "
        h += "<label>From <input type=\"number\" name=\"from\" step=\"any\" value=\"\(from.map(SVGChart.exact) ?? "")\" style=\"width:8rem\"></label> "
        h += "<label>to <input type=\"number\" name=\"to\" step=\"any\" value=\"\(to.map(SVGChart.exact) ?? "")\" style=\"width:8rem\"></label> "
        h += "<button>Apply</button>"
        if zoomed {
            var q = keep + [("xaxis", axis.rawValue), ("smooth", smoothing == 0 ? "0" : String(smoothing)), ("band", band ? "1" : "0")]
            if logY { q.append(("log", "1")) }
            h += " <a id=\"reset-zoom\" href=\"?\(q.map { "\(HTML.q($0.0))=\(HTML.q($0.1))" }.joined(separator: "&"))\">Reset zoom</a>"
        }
        return h + "</form><p class=\"muted small\">Drag across a chart to zoom, double-click to reset; hover for exact values.</p>"
    }
}

extension SVGChart {
    /// A number as it was logged (shortest exact form), for attributes a script reads back.
    static func exact(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    /// An x value as its axis shows it.
    static func axisLabel(_ x: Double, _ axis: MetricAxis, span: Double) -> String {
        switch axis {
        case .step: return span >= 10 && abs(x) < 1e15 ? String(Int64(x.rounded())) : fmt(x)
        case .time:
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = span < 86_400_000 ? "HH:mm:ss" : "MM-dd HH:mm"
            return f.string(from: Date(timeIntervalSince1970: x / 1000))
        case .relative: return duration(x)
        }
    }

    /// Milliseconds as `850ms`, `12.5s`, `3m 20s`, `2h 5m`.
    static func duration(_ ms: Double) -> String {
        let a = abs(ms), sign = ms < 0 ? "-" : ""
        // A zoom bound is any finite double: beyond ~100 million hours, hours in exponent form
        // (never an integer conversion that could trap).
        guard a < 3.6e17 else { return a.isFinite ? sign + String(format: "%.3gh", a / 3_600_000) : "?" }
        if a < 1000 { return sign + fmt(a.rounded()) + "ms" }
        if a < 60_000 { return sign + String(format: "%.3gs", a / 1000) }
        if a < 3_600_000 { return sign + "\(Int(a / 60_000))m \(Int(a / 1000) % 60)s" }
        return sign + "\(Int(a / 3_600_000))h \(Int(a / 60_000) % 60)m"
    }

    /// Exponential moving average with TensorBoard's debiasing, over the drawn values.
    static func smoothed(_ ys: [Double], weight: Double) -> [Double] {
        guard weight > 0 else { return ys }
        var last = 0.0, n = 0.0
        return ys.map { y in
            last = last * weight + (1 - weight) * y
            n += 1
            return last / (1 - pow(weight, n))
        }
    }

    struct NamedSeries {
        var label: String
        var data: MetricSeries
    }

    /// Line chart of one metric for one or more runs, from the database's reduced series: exact
    /// points (with hoverable dots when few) or buckets (the line through LTTB's choices, the band
    /// from each bucket's min to max). Every drawn point's exact values are in `data-xy` for the
    /// hover script; nothing here is interpreted as markup.
    static func metric(_ title: String, _ all: [NamedSeries], _ o: ChartOptions, width: Int = 440, height: Int = 240) -> HTML {
        let total = all.reduce(0) { $0 + $1.data.total }
        let head: HTML = "<figure class=\"card chart\" data-chart=\"\(title)\" data-points=\"\(total)\""
        let caption: HTML = "<figcaption><strong>\(title)</strong></figcaption>"
        // Log scale draws positive values only.
        var hidden = 0
        let series: [NamedSeries] = all.map { s in
            guard o.logY else { return s }
            var d = s.data
            let kept = d.points.filter { $0.y > 0 }
            hidden += d.points.count - kept.count
            d.points = kept.map { p in
                var q = p
                if q.min <= 0 { q.min = q.y }
                return q
            }
            return NamedSeries(label: s.label, data: d)
        }
        func ty(_ y: Double) -> Double { o.logY ? log10(y) : y }
        let smooth = series.map { smoothed($0.data.points.map { ty($0.y) }, weight: o.smoothing) }
        var ys: [Double] = smooth.flatMap { $0 }
        for s in series {
            for p in s.data.points {
                ys.append(ty(p.y))
                if o.band && !s.data.exact { ys += [ty(p.min), ty(p.max)] }
            }
        }
        // Unzoomed, the axis spans the histories' extent (a bucket's x is its mean, inside it).
        let xs = series.flatMap { s in s.data.points.map(\.x) + (s.data.points.isEmpty ? [] : s.data.extent.map { [$0.lowerBound, $0.upperBound] } ?? []) }
        guard let minX0 = o.from ?? xs.min(), let maxX0 = o.to ?? xs.max(), let minY0 = ys.min(), let maxY0 = ys.max(),
            minY0.isFinite, maxY0.isFinite
        else {
            let why = total == 0 && all.contains(where: { $0.data.nonFinite > 0 }) ? "only NaN or infinite values" : (o.zoomed ? "no points in this range" : "no values")
            return head + ">" + caption + "<p class=\"muted\">\(why)</p></figure>"
        }
        let (minX, maxX) = minX0 == maxX0 ? (minX0 - 1, maxX0 + 1) : (Swift.min(minX0, maxX0), Swift.max(minX0, maxX0))
        let pad = (maxY0 - minY0) * 0.05
        let (minY, maxY) = minY0 == maxY0 ? (minY0 - 1, maxY0 + 1) : (minY0 - pad, maxY0 + pad)
        let l = 62.0, r = 10.0, t = 10.0, b = 34.0
        let w = Double(width) - l - r, h = Double(height) - t - b
        func px(_ x: Double) -> Double { l + (x - minX) / (maxX - minX) * w }
        func py(_ y: Double) -> Double { t + (1 - (ty(y) - minY) / (maxY - minY)) * h }
        func pyT(_ v: Double) -> Double { t + (1 - (v - minY) / (maxY - minY)) * h }
        let xName = ["step": "step", "time": "wall time (UTC)", "relative": "relative time"][o.axis.rawValue] ?? "step"
        var fig: HTML = head + " data-axis=\"\(o.axis.rawValue)\" data-log=\"\(o.logY ? "1" : "0")\" data-x0=\"\(exact(minX))\" data-x1=\"\(exact(maxX))\""
        fig += " data-plot=\"\(f1(l)),\(f1(t)),\(f1(w)),\(f1(h))\" data-vw=\"\(width)\">" + caption
        var svg: HTML = "<svg viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"\(title) by \(xName)\">"
        svg += "<defs><clipPath id=\"clip-\(abs(title.hashValue % 1_000_000))\"><rect x=\"\(l)\" y=\"\(t)\" width=\"\(w)\" height=\"\(h)\"/></clipPath></defs>"
        svg += "<rect x=\"\(l)\" y=\"\(t)\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"currentColor\" stroke-opacity=\".2\"/>"
        for frac in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let v = minY + (maxY - minY) * frac
            let label = o.logY ? fmt(pow(10, v)) : fmt(v)
            svg += "<line x1=\"\(l)\" x2=\"\(l + w)\" y1=\"\(f1(pyT(v)))\" y2=\"\(f1(pyT(v)))\" stroke=\"currentColor\" stroke-opacity=\".07\"/>"
            svg += "<text x=\"\(l - 4)\" y=\"\(f1(pyT(v) + 4))\" text-anchor=\"end\">\(label)</text>"
            if frac == 0.25 || frac == 0.75 { continue }
            let x = minX + (maxX - minX) * frac
            svg += "<text x=\"\(f1(px(x)))\" y=\"\(Double(height) - 18)\" text-anchor=\"\(frac == 0 ? "start" : frac == 1 ? "end" : "middle")\">\(axisLabel(x, o.axis, span: maxX - minX))</text>"
        }
        svg += "<text x=\"\(l + w / 2)\" y=\"\(Double(height) - 4)\" text-anchor=\"middle\">\(xName)\(o.logY ? " · log scale" : "")</text>"
        svg += "<g clip-path=\"url(#clip-\(abs(title.hashValue % 1_000_000)))\">"
        for (i, s) in series.enumerated() where !s.data.points.isEmpty {
            let color = palette[i % palette.count]
            let pts = s.data.points
            if o.band && !s.data.exact {
                let upper = pts.map { "\(f1(px($0.x))),\(f1(py($0.max)))" }
                let lower = pts.reversed().map { "\(f1(px($0.x))),\(f1(py($0.min)))" }
                svg += "<polygon class=\"band\" fill=\"\(color)\" fill-opacity=\".15\" stroke=\"none\" points=\"\((upper + lower).joined(separator: " "))\"/>"
            }
            let raw = pts.map { "\(f1(px($0.x))),\(f1(py($0.y)))" }.joined(separator: " ")
            let data = pts.map { "\(exact($0.x)) \(exact($0.y)) \(exact($0.min)) \(exact($0.max)) \($0.count)" }.joined(separator: ";")
            if o.smoothing > 0 {
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-opacity=\".3\" stroke-width=\"1\" points=\"\(raw)\"/>"
                let sm = zip(pts, smooth[i]).map { "\(f1(px($0.x))),\(f1(pyT($1)))" }.joined(separator: " ")
                svg += "<polyline class=\"series\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(sm)\" data-label=\"\(s.label)\" data-xy=\"\(data)\" data-smooth=\"\(zip(pts, smooth[i]).map { exact(o.logY ? pow(10, $1) : $1) }.joined(separator: " "))\"><title>\(s.label) (smoothed \(String(o.smoothing)))</title></polyline>"
            } else {
                svg += "<polyline class=\"series\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(raw)\" data-label=\"\(s.label)\" data-xy=\"\(data)\"><title>\(s.label)</title></polyline>"
            }
            if s.data.exact && pts.count <= 200 {
                for p in pts {
                    svg += "<circle cx=\"\(f1(px(p.x)))\" cy=\"\(f1(py(p.y)))\" r=\"2.5\" fill=\"\(color)\">"
                    svg += "<title>\(s.label) \(xName) \(axisLabel(p.x, o.axis, span: 0)): \(String(p.y))</title></circle>"
                }
            }
        }
        svg += "</g></svg>"
        var notes: [String] = []
        if series.count > 1 || series.contains(where: { !$0.data.exact }) {
            for s in series where !s.data.exact { notes.append("\(s.label): \(s.data.total) points in \(s.data.points.count) buckets") }
        }
        let nonFinite = all.reduce(0) { $0 + $1.data.nonFinite }
        if nonFinite > 0 { notes.append("\(nonFinite) NaN/infinite values not drawn") }
        if hidden > 0 { notes.append("\(hidden) values ≤ 0 not drawn on a log scale") }
        var legend = HTML()
        if series.count > 1 {
            legend = "<p class=\"legend\">" + series.enumerated().map { i, s -> HTML in
                "<span style=\"color:\(palette[i % palette.count])\">■</span> \(s.label)"
            }.joined(separator: " &nbsp; ") + "</p>"
        }
        let noteHTML: HTML = notes.isEmpty ? "" : "<p class=\"muted small\">\(notes.joined(separator: "; "))</p>"
        return fig + svg + legend + noteHTML + "</figure>"
    }

    /// One value per run as horizontal bars (a metric each run logged once).
    static func bars(_ title: String, _ values: [(label: String, value: Double)], width: Int = 440) -> HTML {
        let finite = values.filter { $0.value.isFinite }
        let rowH = 20.0, l = 150.0, r = 70.0
        let height = Int(Double(Swift.max(finite.count, 1)) * rowH + 12)
        var h: HTML = "<figure class=\"card chart\" data-chart=\"\(title)\" data-points=\"\(finite.count)\" data-kind=\"bars\"><figcaption><strong>\(title)</strong> <span class=\"muted small\">one value per run</span></figcaption>"
        guard let lo0 = finite.map(\.value).min(), let hi0 = finite.map(\.value).max() else { return h + "<p class=\"muted\">no finite values</p></figure>" }
        let lo = Swift.min(0, lo0), hi = Swift.max(0, hi0) == lo ? lo + 1 : Swift.max(0, hi0)
        let w = Double(width) - l - r
        func px(_ v: Double) -> Double { l + (v - lo) / (hi - lo) * w }
        h += "<svg viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"\(title) per run\">"
        for (i, item) in finite.enumerated() {
            let y = 6 + Double(i) * rowH
            let x0 = px(Swift.min(0, item.value)), x1 = px(Swift.max(0, item.value))
            let name = item.label.count > 22 ? String(item.label.prefix(21)) + "…" : item.label
            h += "<text x=\"\(l - 6)\" y=\"\(f1(y + 13))\" text-anchor=\"end\">\(name)</text>"
            h += "<rect x=\"\(f1(x0))\" y=\"\(f1(y + 2))\" width=\"\(f1(Swift.max(x1 - x0, 1)))\" height=\"\(f1(rowH - 6))\" fill=\"\(palette[i % palette.count])\"><title>\(item.label): \(String(item.value))</title></rect>"
            h += "<text x=\"\(f1(x1 + 4))\" y=\"\(f1(y + 13))\">\(fmt(item.value))</text>"
        }
        return h + "</svg></figure>"
    }
}
