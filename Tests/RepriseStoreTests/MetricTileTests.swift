import Foundation
import RepriseCore
@testable import RepriseSQL
import Testing

/// The chart summaries (`MetricTiles`) against the points they summarise, on every backend: what a
/// write keeps, what a write that stored duplicates gives up, and that a chart drawn from tiles
/// counts exactly the points in its range.
@Suite("Metric tiles")
struct MetricTileTests {
    static let spike = 20_000

    /// `count` points from `start`: value step mod 100, one spike of 1,000, 10 ms apart.
    static func points(_ key: String, _ range: Range<Int>) -> [Metric] {
        range.map { i in
            Metric(key: key, value: i == spike ? 1_000 : Double(i % 100), timestamp: 1_000_000 + Int64(i) * 10, step: Int64(i))
        }
    }

    static func newRun(_ s: SQLTrackingStore) async throws -> String {
        try await s.createRun(CreateRunInput(experimentID: "0", userID: "tester", runName: "tiles", startTime: 1, tags: [])).info.runID
    }

    static func log(_ s: SQLTrackingStore, _ run: String, _ metrics: [Metric]) async throws {
        for start in stride(from: 0, to: metrics.count, by: 1_000) {
            let part = Array(metrics[start..<min(start + 1_000, metrics.count)])
            try await s.logBatch(runID: run, metrics: part, params: [], tags: [], conflictStyle: .batch)
        }
    }

    /// (tiles, points, finite points) stored for one history.
    static func tiles(_ s: SQLTrackingStore, _ run: String, _ key: String) async throws -> (rows: Int, points: Int, finite: Int) {
        try await s.driver.read { db in
            let r = try await db.queryOne(
                "SELECT COUNT(*), CAST(COALESCE(SUM(points), 0) AS BIGINT), CAST(COALESCE(SUM(finite), 0) AS BIGINT) FROM metric_tiles WHERE run_uuid = ? AND key = ?",
                [.text(run), .text(key)])!
            return (Int(r.int(0)), Int(r.int(1)), Int(r.int(2)))
        }
    }

    static func storedPoints(_ s: SQLTrackingStore, _ run: String, _ key: String) async throws -> Int {
        try await s.driver.read { db in
            Int(try await db.queryOne("SELECT COUNT(*) FROM metrics WHERE run_uuid = ? AND key = ?", [.text(run), .text(key)])!.int(0))
        }
    }

    /// What every drawn series must be: sorted, every finite point in range in exactly one bucket,
    /// bands around the line.
    static func check(_ r: MetricSeries, total: Int, _ what: Comment) {
        #expect(r.total == total, what)
        #expect(r.points.reduce(0) { $0 + $1.count } == total, what)
        #expect(r.points.map(\.x) == r.points.map(\.x).sorted(), what)
        #expect(r.points.allSatisfy { $0.min <= $0.y && $0.y <= $0.max && $0.min <= $0.mean && $0.mean <= $0.max }, what)
    }

    @Test(arguments: Backend.all) func tilesFollowWrites(_ b: Backend) async throws {
        let s = try await b.make()
        let run = try await Self.newRun(s)
        // 40,000 points in batches, then 300 one request at a time, then NaN and +inf.
        try await Self.log(s, run, Self.points("loss", 0..<40_000))
        for m in Self.points("loss", 40_000..<40_300) {
            try await s.logBatch(runID: run, metrics: [m], params: [], tags: [], conflictStyle: .single)
        }
        try await s.logBatch(
            runID: run,
            metrics: [Metric(key: "loss", value: .nan, timestamp: 9_000_000, step: 50_000), Metric(key: "loss", value: .infinity, timestamp: 9_000_001, step: 50_001)],
            params: [], tags: [], conflictStyle: .batch)
        let t = try await Self.tiles(s, run, "loss")
        let stored = try await Self.storedPoints(s, run, "loss")
        #expect(t.points == 40_302 && t.finite == 40_300 && t.points == stored)
        #expect(t.rows == (40_302 + 255) / 256, "tiles fill up in order: \(t.rows)")

        // The whole history from tiles (158 tiles for 100 buckets).
        let whole = try await s.metricSeries(runID: run, key: "loss", axis: .step, from: nil, to: nil, maxPoints: 100)
        Self.check(whole, total: 40_300, "whole")
        #expect(!whole.exact && whole.nonFinite == 2 && whole.extent == 0...40_299 && whole.origin == 1_000_000)
        #expect(whole.points.count <= 100 && whole.points.count >= 90)
        #expect(whole.points.map(\.max).max() == 1_000 && whole.points.map(\.min).min() == 0 && whole.points.contains { $0.y == 1_000 })

        // Zoomed with bounds inside tiles: the ends are read as points, the count stays exact.
        let zoom = try await s.metricSeries(runID: run, key: "loss", axis: .step, from: 1_000.5, to: 30_000.2, maxPoints: 100)
        Self.check(zoom, total: 29_000, "zoom")
        let time = try await s.metricSeries(runID: run, key: "loss", axis: .time, from: 1_000_005, to: 1_200_000, maxPoints: 100)
        Self.check(time, total: 20_000, "time")
        let relative = try await s.metricSeries(runID: run, key: "loss", axis: .relative, from: 0, to: 99_999, maxPoints: 100)
        Self.check(relative, total: 10_000, "relative")
        // Zoomed in further than the tiles can draw: the points themselves.
        let close = try await s.metricSeries(runID: run, key: "loss", axis: .step, from: 19_990, to: 20_010, maxPoints: 100)
        #expect(close.exact && close.points.map(\.x) == (19_990...20_010).map(Double.init) && close.points.first { $0.x == 20_000 }?.y == 1_000)
        let mid = try await s.metricSeries(runID: run, key: "loss", axis: .step, from: 10_000, to: 15_000, maxPoints: 100)
        Self.check(mid, total: 5_001, "mid")

        // The same answers from the points alone (tiles dropped), and from tiles made again.
        _ = try await s.driver.write { db in try await db.execute("DELETE FROM metric_tiles", []) }
        let scanned = try await s.metricSeries(runID: run, key: "loss", axis: .step, from: 1_000.5, to: 30_000.2, maxPoints: 100)
        Self.check(scanned, total: 29_000, "scanned")
        #expect(scanned.points.map(\.max).max() == zoom.points.map(\.max).max() && scanned.extent == zoom.extent)
        try await s.rebuildMetricTiles()
        #expect(try await Self.tiles(s, run, "loss").points == 40_302)
        let rebuilt = try await s.metricSeries(runID: run, key: "loss", axis: .step, from: 1_000.5, to: 30_000.2, maxPoints: 100)
        Self.check(rebuilt, total: 29_000, "rebuilt")
        #expect(rebuilt.points.map(\.x) == zoom.points.map(\.x) && rebuilt.points.map(\.count) == zoom.points.map(\.count))
    }

    /// get-history's encoded read is the value read, written: every page, every bound.
    @Test(arguments: Backend.all) func encodedHistoryIsTheHistory(_ b: Backend) async throws {
        let s = try await b.make()
        let run = try await Self.newRun(s)
        var points = Self.points("h", 0..<2_500)
        points[3].value = .nan
        points[4].value = .infinity
        points[5].value = -.infinity
        points[6].value = 1e-300
        // The optional fields, each column in its place.
        points[7].modelID = "m-1"
        points[8].datasetName = "train"
        points[8].datasetDigest = "d1g"
        points[9].modelID = "m-2"
        points[9].datasetName = "eval \"quoted\""
        points[9].datasetDigest = "d2g"
        try await Self.log(s, run, points)
        for (offset, limit) in [(0, nil), (0, 1), (0, 1_000), (1_000, 1_000), (2_000, 1_000), (2_499, nil), (5_000, 10), (0, Int.max)] as [(Int, Int?)] {
            let values = try await s.metricHistory(runID: run, key: "h", offset: offset, limit: limit)
            let encoded = try await s.metricHistoryEncoded(runID: run, key: "h", offset: offset, limit: limit)
            let expected = EncodedMetrics(values.items, nextOffset: values.nextOffset)
            #expect(encoded.json == expected.json && encoded.count == expected.count && encoded.nextOffset == expected.nextOffset, "\(offset), \(String(describing: limit))")
        }
        let whole = String(decoding: try await s.metricHistoryEncoded(runID: run, key: "h", offset: 0, limit: 20).json, as: UTF8.self)
        #expect(whole.contains(#""dataset_name":"eval \"quoted\"","dataset_digest":"d2g","model_id":"m-2"}"#) && whole.contains(#""value":"NaN""#))
        #expect(try await s.metricHistoryEncoded(runID: run, key: "h", offset: 0, limit: 1_000).nextOffset == 1_000)
        #expect(try await s.metricHistoryEncoded(runID: run, key: "absent", offset: 0, limit: nil).count == 0)
    }

    /// Steps at both ends of Int64 and bounds beyond them: tiles sum and bucket them without a trap.
    @Test(arguments: Backend.all) func extremeStepsAndBounds(_ b: Backend) async throws {
        let s = try await b.make()
        let run = try await Self.newRun(s)
        let low = (0..<10_000).map { Metric(key: "edge", value: Double($0 % 13), timestamp: 1 + Int64($0), step: Int64.min + Int64($0)) }
        let high = (0..<10_000).map { Metric(key: "edge", value: Double($0 % 17), timestamp: 20_000 + Int64($0), step: Int64.max - 9_999 + Int64($0)) }
        try await Self.log(s, run, low + high)
        try await s.logBatch(runID: run, metrics: [high[9_999]], params: [], tags: [], conflictStyle: .single)
        #expect(try await Self.tiles(s, run, "edge").points == 20_000)  // the last point was there already
        for axis in MetricAxis.allCases {
            Self.check(try await s.metricSeries(runID: run, key: "edge", axis: axis, from: nil, to: nil, maxPoints: 16), total: 20_000, "\(axis)")
        }
        let bounds: [(Double, Double)] = [(-1e300, 1e300), (1e300, -1e300), (-9.3e18, 9.3e18), (9.2e18, 9.3e18), (-.greatestFiniteMagnitude, 0)]
        for (from, to) in bounds {
            let r = try await s.metricSeries(runID: run, key: "edge", axis: .step, from: from, to: to, maxPoints: 16)
            #expect(r.points.count <= 16 && r.points.reduce(0) { $0 + $1.count } == r.total, "\(from)...\(to)")
        }
        Self.check(try await s.metricSeries(runID: run, key: "edge", axis: .step, from: 0, to: 9.3e18, maxPoints: 16), total: 10_000, "upper half")
    }

    @Test(arguments: Backend.all) func writesThatCannotBeSummarised(_ b: Backend) async throws {
        let s = try await b.make()
        let run = try await Self.newRun(s)
        // A batch sent twice (a client's retry) stores nothing the second time: the tiles stay.
        try await Self.log(s, run, Self.points("retried", 0..<30_000))
        #expect(try await Self.tiles(s, run, "retried").points == 30_000)
        try await Self.log(s, run, Self.points("retried", 5_000..<6_000))
        #expect(try await Self.tiles(s, run, "retried").points == 30_000)
        // A batch partly stored already: its history loses its tiles, and gets none back from
        // later writes; the chart reads the points and stays exact.
        try await Self.log(s, run, Self.points("retried", 29_500..<30_500))
        #expect(try await Self.tiles(s, run, "retried").rows == 0)
        try await Self.log(s, run, Self.points("retried", 30_500..<31_000))
        #expect(try await Self.tiles(s, run, "retried").rows == 0)
        Self.check(try await s.metricSeries(runID: run, key: "retried", axis: .step, from: nil, to: nil, maxPoints: 100), total: 31_000, "retried")
        // One request repeating a point of its own: the same.
        let once = Metric(key: "twice", value: 1, timestamp: 5, step: 1)
        try await s.logBatch(runID: run, metrics: [once, once], params: [], tags: [], conflictStyle: .batch)
        #expect(try await Self.tiles(s, run, "twice").rows == 0)
        // A request whose points were all stored already adds nothing, and says so: the tiles stay.
        try await Self.log(s, run, Self.points("single", 0..<10))
        try await s.logBatch(runID: run, metrics: [Self.points("single", 3..<4)[0]], params: [], tags: [], conflictStyle: .single)
        try await Self.log(s, run, Self.points("single", 2..<6))
        #expect(try await Self.tiles(s, run, "single").points == 10)

        // A history begun one point at a time (log-metric's path) has tiles from its first point;
        // one without tiles gets none from it.
        for m in Self.points("stepwise", 0..<300) {
            try await s.logBatch(runID: run, metrics: [m], params: [], tags: [], conflictStyle: .single)
        }
        let stepwise = try await Self.tiles(s, run, "stepwise")
        #expect(stepwise.rows == 2 && stepwise.points == 300)
        try await s.logBatch(runID: run, metrics: Self.points("retried", 31_000..<31_001), params: [], tags: [], conflictStyle: .single)
        #expect(try await Self.tiles(s, run, "retried").rows == 0)

        // Logged backwards: tiles overlap along the axis, so the chart reads the points.
        let backwards = (0..<30).flatMap { batch in Self.points("backwards", (29 - batch) * 1_000..<(30 - batch) * 1_000) }
        try await Self.log(s, run, backwards)
        #expect(try await Self.tiles(s, run, "backwards").points == 30_000)
        let r = try await s.metricSeries(runID: run, key: "backwards", axis: .step, from: 100, to: 29_000, maxPoints: 100)
        Self.check(r, total: 28_901, "backwards")
        #expect(r.points.map(\.max).max() == 1_000)

        // Every point at one timestamp: one run of tiles on the time axis, still exact.
        let flat = (0..<20_000).map { Metric(key: "flat", value: Double($0 % 7), timestamp: 42, step: Int64($0)) }
        try await Self.log(s, run, flat)
        Self.check(try await s.metricSeries(runID: run, key: "flat", axis: .time, from: nil, to: nil, maxPoints: 100), total: 20_000, "flat time")
        Self.check(try await s.metricSeries(runID: run, key: "flat", axis: .step, from: 10, to: 19_000, maxPoints: 100), total: 18_991, "flat step")
    }
}
