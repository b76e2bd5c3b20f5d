import Testing

@testable import RepriseCore

@Suite struct EncodedMetricsTests {
    /// However many points, the pieces joined are exactly the points' JSON objects, comma separated,
    /// in order; every piece but the last is at least its size long (a small first piece, then
    /// 1 MiB ones), and the byte count is their sum.
    @Test(arguments: [0, 1, 2, 700, 800, 20_000, 40_000])
    func piecesJoinToThePoints(_ n: Int) throws {
        var metrics: [Metric] = []
        for i in 0..<n {
            let value: Double = i % 7 == 0 ? .nan : Double(i) / 3
            let model: String? = i % 5 == 0 ? "m-\(i)" : nil
            metrics.append(Metric(key: "loss", value: value, timestamp: 1_700_000_000_000 + Int64(i), step: Int64(i), modelID: model))
        }
        let encoded = EncodedMetrics(metrics, nextOffset: nil)
        var expected: [UInt8] = []
        for (i, m) in metrics.enumerated() {
            if i > 0 { expected.append(UInt8(ascii: ",")) }
            m.writeJSON(to: &expected)
        }
        let pieces = encoded.allPieces
        #expect(pieces.flatMap { $0 } == expected)
        #expect(encoded.json == expected)
        #expect(encoded.byteCount == expected.count)
        #expect(encoded.count == n)
        if pieces.count > 1 { #expect(pieces[0].count >= EncodedMetrics.firstPieceSize) }
        #expect(pieces.dropFirst().dropLast().allSatisfy { $0.count >= EncodedMetrics.pieceSize })
        #expect(pieces.allSatisfy { !$0.isEmpty })
        if n == 0 { #expect(pieces.isEmpty) }
        if n >= 40_000 { #expect(pieces.count > 2) }
        // A whole history parses back as the array of the points.
        let parsed = try JSONValue.parse(Array("[".utf8) + expected + Array("]".utf8))
        guard case .array(let items) = parsed else { Issue.record("not an array"); return }
        #expect(items.count == n)
    }
}
