import RepriseCore
import Testing

@Suite("Wire JSON")
struct JSONTests {
    @Test func roundTrips() throws {
        let text = #"{"a":1,"b":-2.5,"c":"x\"y\\z\n","d":[true,false,null],"e":{"f":"é😀"}}"#
        let v = try JSONValue.parse(text)
        #expect(v["a"] == .int(1))
        #expect(v["b"] == .double(-2.5))
        #expect(v["c"] == .string("x\"y\\z\n"))
        #expect(v["e"]?["f"] == .string("é😀"))
        #expect(try JSONValue.parse(v.jsonString) == v)
    }

    @Test func escapesAndSurrogates() throws {
        #expect(try JSONValue.parse(#""\u00e9\ud83d\ude00\t""#) == .string("é😀\t"))
        #expect(JSONValue.string("\u{1}").jsonString == #""\u0001""#)
    }

    /// The writers' fast paths (one copy for a plain string, integers right to left) against the
    /// edges: every Int64 extreme, and strings with and without bytes to escape.
    @Test func writersAtTheEdges() throws {
        for v: Int64 in [0, 1, -1, 9, 10, -10, 1_700_000_000_000, .max, .min, .min + 1] {
            #expect(JSONValue.int(v).jsonString == String(v))
        }
        for text in ["", "loss", "a \"quoted\" word", "back\\slash", "tab\there", "é😀", String(repeating: "x", count: 100), "\u{1F}"] {
            #expect(try JSONValue.parse(JSONValue.string(text).jsonString) == .string(text), "\(text)")
        }
        #expect(JSONValue.string("plain").jsonString == #""plain""#)
    }

    @Test func specialDoubles() throws {
        #expect(JSONValue.double(.nan).jsonString == #""NaN""#)
        #expect(JSONValue.double(.infinity).jsonString == #""Infinity""#)
        #expect(JSONValue.double(-.infinity).jsonString == #""-Infinity""#)
        #expect(JSONValue.double(1).jsonString == "1.0")
        #expect(JSONValue.double(0.1).jsonString == "0.1")
        let specials = try JSONValue.parse("[NaN, Infinity, -Infinity]")
        guard case .array(let items) = specials, case .double(let nan) = items[0] else {
            Issue.record("not an array of doubles")
            return
        }
        #expect(nan.isNaN)
        #expect(Array(items.dropFirst()) == [.double(.infinity), .double(-.infinity)])
        #expect(try JSONValue.parse("9007199254740993") == .int(9_007_199_254_740_993))
    }

    @Test func rejectsMalformedInput() {
        for bad in ["", "{", "{\"a\":}", "[1,]", "tru", "\"abc", "{\"a\" 1}", "01x", "[1] 2", "\"\u{1}\""] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
        let deep = String(repeating: "[", count: 10000) + String(repeating: "]", count: 10000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
    }

    @Test func pythonDumpsForMessages() {
        #expect(JSONValue.string("foo").pythonDumps == #""foo""#)
        #expect(JSONValue.int(31).pythonDumps == "31")
        #expect(JSONValue.double(9).pythonDumps == "9.0")
        #expect(JSONValue.array([.string("5")]).pythonDumps == #"["5"]"#)
    }
}
