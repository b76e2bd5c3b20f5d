/// A metric history drawn as a chart: what the x axis measures, and the history reduced to at most
/// as many points as a chart has pixels, keeping its extremes.

/// The x axis of a metric chart.
public enum MetricAxis: String, Sendable, CaseIterable {
    /// The step the client logged.
    case step
    /// Wall-clock time (milliseconds since the epoch).
    case time
    /// Milliseconds since the series' first point.
    case relative

    /// The stored column the axis reads.
    public var column: String { self == .step ? "step" : "timestamp" }
}

/// One run's history of one key, ready to draw: exact points when the range holds few enough,
/// otherwise one point per bucket of equal x width with the bucket's minimum, maximum and count.
public struct MetricSeries: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        /// On the series' axis (relative: milliseconds since `origin`).
        public var x: Double
        /// The value drawn: the logged value, or in a bucket the one LTTB picks among its minimum,
        /// maximum and mean (so a spike stays on the line).
        public var y: Double
        public var min: Double
        public var max: Double
        public var mean: Double
        /// Points the bucket holds (1 for an exact point).
        public var count: Int
        public init(x: Double, y: Double, min: Double, max: Double, mean: Double, count: Int) {
            self.x = x
            self.y = y
            self.min = min
            self.max = max
            self.mean = mean
            self.count = count
        }
        public static func exact(_ x: Double, _ y: Double) -> Point { Point(x: x, y: y, min: y, max: y, mean: y, count: 1) }
    }

    public var points: [Point]
    /// Finite points inside the range asked for.
    public var total: Int
    /// Whether `points` are the logged points themselves.
    public var exact: Bool
    /// NaN and ±inf points (anywhere in the history): not drawn, but counted.
    public var nonFinite: Int
    /// The first timestamp of the history: zero of the relative axis.
    public var origin: Int64
    /// The x extent of the whole finite history (nil when it has none), for a chart's "reset zoom".
    public var extent: ClosedRange<Double>?

    public init(points: [Point], total: Int, exact: Bool, nonFinite: Int, origin: Int64, extent: ClosedRange<Double>?) {
        self.points = points
        self.total = total
        self.exact = exact
        self.nonFinite = nonFinite
        self.origin = origin
        self.extent = extent
    }

    /// The most points a chart asks for, and the fewest.
    public static let pointLimit = 5_000
    public static let pointMinimum = 16

    /// Chooses the drawn value of each bucket, Largest-Triangle-Three-Buckets style: among the
    /// bucket's minimum, maximum and mean (all at the bucket's mean x), the candidate making the
    /// largest triangle with the previous choice and the next bucket's mean. The first and last
    /// buckets keep their mean. Extremes the line does not reach stay in `min`/`max` (the band).
    public static func lttb(_ buckets: [Point]) -> [Point] {
        guard buckets.count > 2 else { return buckets }
        var out = buckets
        var prev = (x: buckets[0].x, y: buckets[0].mean)
        for i in 1..<(buckets.count - 1) {
            let b = buckets[i]
            let next = (x: buckets[i + 1].x, y: buckets[i + 1].mean)
            var best = b.mean
            var bestArea = -1.0
            for y in [b.min, b.max, b.mean] {
                // Twice the triangle's area; only the comparison matters.
                let area = abs((prev.x - next.x) * (y - prev.y) - (prev.x - b.x) * (next.y - prev.y))
                if area > bestArea {
                    bestArea = area
                    best = y
                }
            }
            out[i].y = best
            prev = (b.x, best)
        }
        return out
    }
}
