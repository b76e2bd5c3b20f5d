import Testing

@testable import RepriseServer

@Suite("Prompt line diff")
struct LineDiffTests {
    func render(_ a: String, _ b: String) -> [String] {
        (LineDiff.diff(a, b) ?? []).map { line in
            switch line.kind {
            case .same: "  " + line.text
            case .added: "+ " + line.text
            case .removed: "- " + line.text
            }
        }
    }

    @Test func removalsComeBeforeAdditions() {
        #expect(render("a\nb\nc", "a\nB\nc") == ["  a", "- b", "+ B", "  c"])
        #expect(render("", "x") == ["- ", "+ x"])
        #expect(render("same", "same") == ["  same"])
        #expect(render("a\nb", "b\nc") == ["- a", "  b", "+ c"])
        #expect(render("one\ntwo", "") == ["- one", "- two", "+ "])
    }

    @Test func refusesHugeInputs() {
        let big = Array(repeating: "x", count: LineDiff.maxLines + 1).joined(separator: "\n")
        #expect(LineDiff.diff(big, "x") == nil)
        #expect(LineDiff.diff("x", big) == nil)
    }
}
