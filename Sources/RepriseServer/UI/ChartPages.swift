import Foundation
import RepriseCore

// The charts workspace: every metric of a selection of runs as a grid (`/ui/charts?runs=…`), one
// metric across the runs of an experiment (`/ui/experiments/{id}/chart?metric=…`), and the same
// grid on the run and compare pages. Histories are reduced in the database (`metricSeries`), so a
// 1,000,000-point history costs a chart at most a few hundred rows; the x axis, log scale,
// smoothing, bands and zoom are query parameters (`ChartOptions`), and `/ui/static/app.js` adds
// hover values and drag-to-zoom on top.
extension RepriseAPI {
    func registerChartPages() {
        let base = config.staticPrefix
        route(.get, "/ui/charts", access: .experiments(.read, .commaSeparatedQuery("runs", runs: true)), uiPage { [self] call, _ in
            try await Self.workspacePage(call, store: store, base: base)
        })
        route(.get, "/ui/experiments/{experiment_id}/chart", access: .experiment(.read, .pathParameter("experiment_id")), uiPage { [self] call, _ in
            try await Self.experimentChartPage(call, experimentID: try call.pathParameter("experiment_id"), store: store, base: base)
        })
    }

    /// The most runs one workspace draws, and the most metric keys.
    static let workspaceRunLimit = 50
    static let workspaceKeyLimit = 100

    static func runLabel(_ r: Run) -> String { r.info.runName.isEmpty ? String(r.info.runID.prefix(8)) : r.info.runName }

    /// Points per series: enough for the chart's width, fewer as more runs share a chart.
    static func pointsPerSeries(runs: Int) -> Int { max(MetricSeries.pointMinimum, min(400, 2_000 / max(runs, 1))) }

    /// A grid of charts, one per key: a line chart of each run's history, or, when every run logged
    /// the key once, bars (several runs) or nothing (one run: the value is in the run's table).
    static func chartGrid(store: any TrackingStore, runs: [Run], keys: [String], options: ChartOptions) async throws -> (html: HTML, charts: Int) {
        var charts: [HTML] = []
        let points = pointsPerSeries(runs: runs.count)
        for key in keys {
            var series: [SVGChart.NamedSeries] = []
            for r in runs where r.metrics.contains(where: { $0.key == key }) {
                let s = try await store.metricSeries(
                    runID: r.info.runID, key: key, axis: options.axis, from: options.from, to: options.to, maxPoints: points)
                series.append(.init(label: runLabel(r), data: s))
            }
            if series.isEmpty { continue }
            // Logged once per run (counted over the whole history, not the zoomed range).
            let single = !options.zoomed && series.allSatisfy { $0.data.total + $0.data.nonFinite <= 1 }
            if single {
                if series.count < 2 { continue }
                charts.append(SVGChart.bars(key, series.map { s in (s.label, s.data.points.first?.y ?? .nan) }))
            } else {
                charts.append(SVGChart.metric(key, series, options))
            }
        }
        return (charts.isEmpty ? HTML() : "<div class=\"charts\">" + charts.joined() + "</div>", charts.count)
    }

    static func runIDs(_ call: Call) -> [String] {
        var seen = Set<String>()
        return (call.query["runs"] ?? []).flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    static func workspacePage(_ call: Call, store: any TrackingStore, base: String) async throws -> Page {
        let ids = runIDs(call)
        guard !ids.isEmpty else { throw RepriseError.invalid("Choose runs to chart: /ui/charts?runs=RUN_ID,RUN_ID (or tick runs on an experiment's page).") }
        if ids.count > workspaceRunLimit {
            throw RepriseError.invalid("The workspace charts at most \(workspaceRunLimit) runs at once; \(ids.count) were chosen.")
        }
        let options = try ChartOptions(query: call.query)
        var runs: [Run] = []
        for id in ids { runs.append(try await store.getRun(id: id)) }
        let all = Set(runs.flatMap { $0.metrics.map(\.key) }).sorted()
        let wanted = (call.query["metrics"]?.last).map { $0.split(separator: ",").map(String.init).filter(all.contains) } ?? []
        let keys = Array((wanted.isEmpty ? all.filter { !$0.hasPrefix("system/") } + all.filter { $0.hasPrefix("system/") } : wanted).prefix(workspaceKeyLimit))
        var body: HTML = "<h1>Charts: \(runs.count == 1 ? Self.runLabel(runs[0]) : "\(runs.count) runs")</h1>"
        body += "<p class=\"muted\">" + runs.map { r -> HTML in "<a href=\"\(base)/ui/runs/\(HTML.q(r.info.runID))\">\(Self.runLabel(r))</a>" }.joined(separator: ", ")
        if runs.count >= 2 { body += " · <a href=\"\(base)/ui/compare?runs=\(HTML.q(ids.joined(separator: ",")))\">compare their fields</a>" }
        body += "</p>"
        var keep: [(String, String)] = [("runs", ids.joined(separator: ","))]
        if !wanted.isEmpty { keep.append(("metrics", wanted.joined(separator: ","))) }
        body += options.form(keep: keep)
        let grid = try await chartGrid(store: store, runs: runs, keys: keys, options: options)
        body += grid.charts == 0 ? "<p class=\"muted\">No metric histories to chart\(options.zoomed ? " in this range" : ""): these runs logged no metrics, or each logged every metric once.</p>" : grid.html
        if all.count > keys.count { body += "<p class=\"muted\">\(keys.count) of \(all.count) metrics shown.</p>" }
        return ("Charts", body)
    }

    /// One metric for the runs of an experiment (the runs table's filter and order; the first
    /// `size`, at most 100): lines, or bars when each run logged it once.
    static func experimentChartPage(_ call: Call, experimentID: String, store: any TrackingStore, base: String) async throws -> Page {
        let experiment = try await store.getExperiment(id: experimentID)
        let options = try ChartOptions(query: call.query)
        let filter = call.query["filter"]?.last ?? ""
        let order = call.query["order"]?.last ?? "attributes.start_time DESC"
        let size = min(max(Int(call.query["size"]?.last ?? "") ?? 25, 1), 100)
        let runs = try await store.searchRuns(
            try RunSearchQuery(experimentIDs: [experimentID], filter: filter.isEmpty ? nil : filter, orderBy: [order], viewType: .activeOnly,
                               maxResults: size, pageToken: nil)).items
        let keys = Set(runs.flatMap { $0.metrics.map(\.key) }).sorted()
        let metric = call.query["metric"]?.last.flatMap { keys.contains($0) ? $0 : nil } ?? keys.first { !$0.hasPrefix("system/") } ?? keys.first
        var body: HTML = "<p class=\"muted\"><a href=\"\(base)/ui/experiments/\(HTML.q(experimentID))\">\(experiment.name)</a> /</p><h1>Chart a metric across runs</h1>"
        guard let metric else {
            return ("Chart · \(experiment.name)", body + "<p class=\"muted\">No run \(filter.isEmpty ? "" : "matching the filter ")logged a metric.</p>")
        }
        var keep: [(String, String)] = []
        body += "<form method=\"get\" class=\"inline\" data-autosubmit><label>Metric <select name=\"metric\">" + keys.map { k -> HTML in
            "<option value=\"\(k)\"\(k == metric ? " selected" as HTML : "")>\(k)</option>"
        }.joined() + "</select></label> "
        body += "<label>Filter <input type=\"text\" name=\"filter\" value=\"\(filter)\" size=\"40\" placeholder=\"metrics.accuracy > 0.8\"></label> "
        body += "<label>Runs <input type=\"number\" name=\"size\" min=\"1\" max=\"100\" value=\"\(size)\" style=\"width:4.5rem\"></label> "
        body += "<input type=\"hidden\" name=\"order\" value=\"\(order)\"><button>Show</button></form>"
        keep = [("metric", metric), ("filter", filter), ("order", order), ("size", String(size))]
        body += options.form(keep: keep)
        let grid = try await chartGrid(store: store, runs: runs, keys: [metric], options: options)
        body += grid.charts == 0 ? "<p class=\"muted\">Nothing to chart for \(metric)\(options.zoomed ? " in this range" : "").</p>" : grid.html
        body += "<p class=\"muted\">The first \(runs.count) run(s) in the order \(order)\(filter.isEmpty ? "" : " matching \(filter)")."
        if !runs.isEmpty {
            body += " <a href=\"\(base)/ui/charts?runs=\(HTML.q(runs.prefix(workspaceRunLimit).map(\.info.runID).joined(separator: ",")))\">All their metrics in the workspace</a>"
        }
        return ("Chart · \(experiment.name)", body + "</p>")
    }
}
