import Foundation
import Testing

@testable import RepriseCore

@Suite struct RandomIDTests {
    /// Both forms are version-4 UUIDs that Foundation parses back to the same value, in lower case,
    /// and 20,000 of them do not repeat.
    @Test func idsAreVersion4UUIDs() throws {
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let hex = RandomID.hex()
            #expect(hex.utf8.count == 32)
            #expect(hex.utf8.allSatisfy { Hex.digits.contains($0) })
            #expect(Array(hex.utf8)[12] == UInt8(ascii: "4"))
            #expect("89ab".utf8.contains(Array(hex.utf8)[16]))
            let dashed = RandomID.uuid()
            let parsed = try #require(UUID(uuidString: dashed))
            #expect(parsed.uuidString.lowercased() == dashed)
            let parts = dashed.split(separator: "-").map(\.count)
            #expect(parts == [8, 4, 4, 4, 12])
            #expect(dashed.replacingOccurrences(of: "-", with: "").utf8.allSatisfy { Hex.digits.contains($0) })
            #expect(Array(dashed.utf8)[14] == UInt8(ascii: "4"))
            #expect("89ab".utf8.contains(Array(dashed.utf8)[19]))
            seen.insert(hex)
            seen.insert(dashed.replacingOccurrences(of: "-", with: ""))
        }
        #expect(seen.count == 20_000)
    }

    /// Every hex digit appears in every free position over many ids: the nibbles are all taken from
    /// the random words (a fixed or shifted-away nibble would show up as a position with one value).
    @Test func everyFreeNibbleVaries() {
        var values = Array(repeating: Set<UInt8>(), count: 32)
        for _ in 0..<2_000 {
            for (i, c) in RandomID.hex().utf8.enumerated() { values[i].insert(c) }
        }
        for i in 0..<32 {
            switch i {
            case 12: #expect(values[i] == [UInt8(ascii: "4")])
            case 16: #expect(values[i] == Set("89ab".utf8))
            default: #expect(values[i].count == 16, "nibble \(i)")
            }
        }
    }
}
