import Foundation
import RepriseCore
import Testing

/// Paths are split and compared on bytes. Swift's `Character` operations see a '/' joined to a
/// combining mark (`/\u{301}`), a skin-tone modifier (`/🏻`) or a prepended mark before it
/// (`\u{600}/`) as one grapheme cluster that is not "/", while the kernel and every URL parser see
/// a separator. Each case here is a path where the two readings differ.
@Suite("Paths on bytes")
struct ValidationPathTests {
    /// Separators a `Character` check misses: after the slash, a combining acute, a skin-tone
    /// modifier, a variation selector, a zero-width joiner; before it, an Arabic number sign.
    static let joinedSlashes = markedSlashes + ["\u{600}/"]
    /// The ones where the mark follows the slash, so `..` can stand right before it.
    static let markedSlashes = ["/\u{301}", "/\u{1F3FB}", "/\u{FE0F}", "/\u{200D}"]

    @Test func componentsSplitOnEverySlashByte() {
        for sep in Self.joinedSlashes {
            // What the kernel would walk: `..` then the rest.
            let path = ".." + sep + "x"
            let comps = Validation.pathComponents(path)
            #expect(comps.count == 2, "\(Array(path.unicodeScalars))")
            #expect(comps.joined(separator: "/").utf8.elementsEqual(path.utf8))
        }
        #expect(Validation.pathComponents("à/🏻¹Ć") == ["à", "🏻¹Ć"])
        #expect(Validation.pathComponents("/a//b/") == ["a", "b"])
        #expect(Validation.pathComponents("/a//b/", omittingEmpty: false) == ["", "a", "", "b", ""])
        #expect(Validation.pathComponents("a\\b/c", backslash: true) == ["a", "b", "c"])
        #expect(Validation.pathComponents("") == [])
    }

    @Test func artifactPathsWithJoinedSlashesCannotEscape() throws {
        for sep in Self.markedSlashes {
            for bad in [".." + sep + "x", "a/.." + sep + "..", "a" + sep + ".." + sep + ".." + sep + "etc", sep + "etc"] {
                // Each either is refused or splits into components none of which is `..`, with no
                // slash left inside any component.
                if let comps = try? Validation.artifactPathComponents(bad) {
                    #expect(!comps.contains(where: Validation.isDotDot), "\(Array(bad.unicodeScalars))")
                    #expect(comps.allSatisfy(Validation.isPlainPathComponent), "\(Array(bad.unicodeScalars))")
                }
            }
            #expect(throws: RepriseError.self) { try Validation.artifactPathComponents(".." + sep + "x") }
            // `a<sep>..` is `a` then `<mark>..`: a name, not a step up, so that path stays inside.
            #expect(try Validation.artifactPathComponents("a" + sep + ".." + sep + "etc").count == 3)
        }
        // A prepended mark joins the slash after it; the `..` that follows is still seen.
        #expect(throws: RepriseError.self) { try Validation.artifactPathComponents("a\u{600}/../../etc") }
        #expect(try Validation.artifactPathComponents("a\u{600}/b") == ["a\u{600}", "b"])
        // The path from the fuzzer: two plain components, accepted.
        #expect(try Validation.artifactPathComponents("à/🏻¹Ć") == ["à", "🏻¹Ć"])
        // `..` with a mark on a dot is a name, not a step up; a mark on a drive colon is still a drive.
        #expect(try Validation.artifactPathComponents("..\u{301}/x") == ["..\u{301}", "x"])
        #expect(throws: RepriseError.self) { try Validation.artifactPathComponents("C:\u{301}/x") }
    }

    @Test func plainComponentsHaveNoSlashByte() {
        for sep in Self.joinedSlashes {
            #expect(!Validation.isPlainPathComponent(".." + sep + "x"))
            #expect(!Validation.isPlainPathComponent("a" + sep))
        }
        #expect(!Validation.isPlainPathComponent(".."))
        #expect(!Validation.isPlainPathComponent("."))
        #expect(!Validation.isPlainPathComponent(""))
        #expect(!Validation.isPlainPathComponent("a\u{0}"))
        #expect(Validation.isPlainPathComponent("..\u{301}"))
        #expect(Validation.isPlainPathComponent("🏻¹Ć"))
    }

    @Test func normpathCollapsesEveryDotDotByte() {
        for sep in Self.markedSlashes {
            // `/root/..<sep>etc`: the kernel leaves the root; so must normpath.
            let normalized = Validation.normpath("/root/.." + sep + "etc")
            #expect(!normalized.utf8.starts(with: "/root/".utf8), "\(Array(normalized.unicodeScalars))")
            #expect(Validation.relativePath(normalized, under: "/root") == nil)
        }
        #expect(Validation.normpath("/a/b/../c") == "/a/c")
    }

    @Test func trimmingSlashesIsByteWise() {
        #expect(Validation.trimmingSlashes("//a/b//") == "a/b")
        #expect(Validation.trimmingSlashes("//a/b//", trailing: false) == "a/b//")
        #expect(Validation.trimmingSlashes("//a/b//", leading: false) == "//a/b")
        // A slash joined to a mark is still a slash: the mark stays, the slash goes.
        #expect(Validation.trimmingSlashes("/\u{301}x", trailing: false) == "\u{301}x")
        #expect(Validation.trimmingSlashes("///") == "")
    }

    @Test func relativePathComparesBytes() {
        #expect(Validation.relativePath("/data/art", under: "/data/art") == "")
        #expect(Validation.relativePath("/data/art/1/x", under: "/data/art") == "1/x")
        #expect(Validation.relativePath("/data/artx", under: "/data/art") == nil)
        #expect(Validation.relativePath("/a/b", under: "/") == "a/b")
        // Canonically equivalent, different bytes: a different folder to the kernel.
        #expect(Validation.relativePath("/data/cafe\u{301}/x", under: "/data/caf\u{E9}") == nil)
        #expect(Validation.relativePath("/data/art/\u{301}x", under: "/data/art") == "\u{301}x")
    }

    @Test func namesWithJoinedSeparatorsAreRefused() {
        #expect(throws: RepriseError.self) { try Validation.validateRegisteredModelName("a/\u{301}b") }
        #expect(throws: RepriseError.self) { try Validation.validateRegisteredModelName("a:\u{301}b") }
        #expect(throws: RepriseError.self) { try Validation.validateLoggedModelName("a/\u{301}b") }
        #expect(throws: RepriseError.self) { try Validation.validateKey("a/\u{301}b", lengthLabel: "Param key") }
    }

    @Test func proxyURIsSplitOnBytes() {
        #expect(ArtifactURI.proxyPath("mlflow-artifacts://host/\u{301}1/x")?.unicodeScalars.first == "/")
        #expect(ArtifactURI.proxyPath("mlflow-artifacts://host/\u{301}1/x") == "/\u{301}1/x")
    }
}

/// The class stays fixed: no source file splits on `Character` "/" (one splitter, above). Route
/// templates are this server's own constants, so `Routing.swift` may.
@Suite("Paths on bytes: sources")
struct PathSplitLintTests {
    @Test func noCharacterWiseSlashSplits() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources").standardized
        let files = try #require(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        #expect(files.count > 50)
        var offenders: [String] = []
        for file in files where !file.hasSuffix("RepriseServer/Routing.swift") {
            let text = try String(contentsOfFile: sources.path + "/" + file, encoding: .utf8)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("split(separator: \"/\"") || line.contains("split(separator: \"\\\\\"") {
                offenders.append("\(file):\(n + 1)")
            }
        }
        #expect(offenders == [], "split paths with Validation.pathComponents (bytes), not Character-wise")
    }
}
