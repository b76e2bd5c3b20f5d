import RepriseCore

extension SQLTrackingStore {
    /// The history reduced in the database: one scan for the extent, at most one for the count in a
    /// zoomed range, and one that returns either the points (few enough) or one row per bucket, so
    /// a 1,000,000-point history crosses into Swift as at most `maxPoints` rows.
    public func metricSeries(runID: String, key: String, axis: MetricAxis, from: Double?, to: Double?, maxPoints: Int) async throws
        -> MetricSeries
    {
        let limit = max(MetricSeries.pointMinimum, min(maxPoints, MetricSeries.pointLimit))
        let col = axis.column
        let x = "CAST(\(col) AS DOUBLE PRECISION)"
        // Finite values only: NaN rows carry is_nan, and ±inf is stored as ±Double.greatestFiniteMagnitude
        // (as MLflow stores it), so the bounds are exclusive.
        let finite = "is_nan = 0 AND value > ? AND value < ?"
        let fb: [SQLValue] = [.double(-.greatestFiniteMagnitude), .double(.greatestFiniteMagnitude)]
        let floor = driver.dialect.floorOfNonNegative
        return try await read { db in
            let head = try await db.query(
                """
                SELECT COUNT(*), MIN(timestamp), SUM(CASE WHEN \(finite) THEN 1 ELSE 0 END),
                  MIN(CASE WHEN \(finite) THEN \(col) END), MAX(CASE WHEN \(finite) THEN \(col) END)
                FROM metrics WHERE run_uuid = ? AND key = ?
                """, fb + fb + fb + [.text(runID), .text(key)])
            guard let h = head.first, h.int(0) > 0 else {
                return MetricSeries(points: [], total: 0, exact: true, nonFinite: 0, origin: 0, extent: nil)
            }
            let all = Int(clamping: h.int(0)), finiteCount = Int(clamping: h.int(2))
            let origin = h.int(1)
            let shift = axis == .relative ? Double(origin) : 0
            guard finiteCount > 0, let minX = h.optionalInt(3), let maxX = h.optionalInt(4) else {
                return MetricSeries(points: [], total: 0, exact: true, nonFinite: all, origin: origin, extent: nil)
            }
            let extent = (Double(minX) - shift)...(Double(maxX) - shift)
            // The range in stored units, as integers the column compares with exactly.
            // Points with from <= x <= to, the bounds in either order.
            var (a, b) = (from.map { $0 + shift }, to.map { $0 + shift })
            if let x = a, let y = b, x > y { (a, b) = (y, x) }
            let lo = max(a.map(Self.int64Ceil) ?? minX, minX)
            let hi = min(b.map(Self.int64Floor) ?? maxX, maxX)
            let range = "run_uuid = ? AND key = ? AND \(finite) AND \(col) >= ? AND \(col) <= ?"
            let rangeBinds: [SQLValue] = [.text(runID), .text(key)] + fb + [.int(lo), .int(hi)]
            if lo > hi {
                return MetricSeries(points: [], total: 0, exact: true, nonFinite: all - finiteCount, origin: origin, extent: extent)
            }
            let total: Int
            if lo == minX && hi == maxX {
                total = finiteCount
            } else {
                total = Int(clamping: try await db.query("SELECT COUNT(*) FROM metrics WHERE \(range)", rangeBinds).first?.int(0) ?? 0)
            }
            if total <= limit {
                let rows = try await db.query(
                    "SELECT \(col), value FROM metrics WHERE \(range) ORDER BY \(col), timestamp, step, value LIMIT ?",
                    rangeBinds + [.int(Int64(limit))])
                return MetricSeries(
                    points: rows.map { .exact(Double($0.int(0)) - shift, $0.double(1)) }, total: total, exact: true,
                    nonFinite: all - finiteCount, origin: origin, extent: extent)
            }
            // Buckets of equal width over [lo, hi]; the last one includes hi. The mean leaves out
            // values beyond ±1e300, whose sum could overflow (an error on PostgreSQL); they stay in
            // the bucket's min and max.
            let (loD, hiD) = (Double(lo), Double(hi))
            let scale = hiD > loD ? Double(limit) / (hiD - loD) : 0
            let rows = try await db.query(
                """
                SELECT \(floor("(\(x) - ?) * ?")) AS b, COUNT(*), MIN(value), MAX(value),
                  AVG(CASE WHEN value > -1e300 AND value < 1e300 THEN value END), AVG(\(x))
                FROM metrics WHERE \(range) GROUP BY b ORDER BY b
                """, [.double(loD), .double(scale)] + rangeBinds)
            var buckets: [(b: Int64, p: MetricSeries.Point)] = []
            for r in rows {
                let b = min(r.int(0), Int64(limit - 1))
                let n = Int(clamping: r.int(1))
                let (mn, mx) = (r.double(2), r.double(3))
                let mean = r.optionalDouble(4) ?? (mn / 2 + mx / 2)
                let p = MetricSeries.Point(x: r.double(5) - shift, y: mean, min: mn, max: mx, mean: mean, count: n)
                if let last = buckets.last, last.b == b {
                    // The bucket at hi spills into the last one: merge, weighting by count.
                    let q = last.p
                    let w = Double(q.count + n)
                    let merged = MetricSeries.Point(
                        x: q.x * (Double(q.count) / w) + p.x * (Double(n) / w), y: 0, min: Swift.min(q.min, mn), max: Swift.max(q.max, mx),
                        mean: q.mean * (Double(q.count) / w) + mean * (Double(n) / w), count: q.count + n)
                    buckets[buckets.count - 1].p = MetricSeries.Point(
                        x: merged.x, y: merged.mean, min: merged.min, max: merged.max, mean: merged.mean, count: merged.count)
                } else {
                    buckets.append((b, p))
                }
            }
            return MetricSeries(
                points: MetricSeries.lttb(buckets.map(\.p)), total: total, exact: false, nonFinite: all - finiteCount, origin: origin,
                extent: extent)
        }
    }

    /// A client's bound as a stored integer, without trapping on any double.
    static func int64Floor(_ d: Double) -> Int64 {
        if d.isNaN { return 0 }
        if d <= -9.2e18 { return .min }
        if d >= 9.2e18 { return .max }
        return Int64(d.rounded(.down))
    }

    static func int64Ceil(_ d: Double) -> Int64 {
        if d.isNaN { return 0 }
        if d <= -9.2e18 { return .min }
        if d >= 9.2e18 { return .max }
        return Int64(d.rounded(.up))
    }
}
