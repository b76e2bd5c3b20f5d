import RepriseCore
import Testing

@Suite("Validation")
struct ValidationTests {
    @Test func normpathMatchesPython() {
        let cases = ["a//b": "a/b", "./a": "a", "a/": "a", "../x": "../x", "a/../b": "b", "": ".", "/a/./b": "/a/b", "a/b/..": "a"]
        for (input, expected) in cases { #expect(Validation.normpath(input) == expected, "\(input)") }
    }

    @Test func acceptsGoodKeys() throws {
        for key in ["loss", "a/b", "a.b-c d:e", "métrique_1"] {
            try Validation.validateKey(key, lengthLabel: "Param key")
        }
    }

    @Test func rejectsBadKeys() {
        for key in ["a*b", "a//b", "./a", "a/", "../x", "/abs", ".", String(repeating: "k", count: 251)] {
            #expect(throws: RepriseError.self, "\(key)") { try Validation.validateKey(key, lengthLabel: "Param key") }
        }
        do {
            try Validation.validateKey("../x", lengthLabel: "Param key")
        } catch let e as RepriseError {
            #expect(e.message.hasSuffix("This name would resolve to '../x'"))
        } catch {}
    }

    @Test func artifactPathsCannotEscape() throws {
        #expect(try Validation.artifactPathComponents("a/./b//c") == ["a", "b", "c"])
        #expect(try Validation.artifactPathComponents("") == [])
        for bad in ["../x", "a/../../x", "/etc/passwd", "a\\b", "a#b", "C:/x", "a/\u{0}b", ".."] {
            #expect(throws: RepriseError.self, "\(bad)") { try Validation.artifactPathComponents(bad) }
        }
    }

    @Test func percentDecoding() {
        #expect(Validation.percentDecode("a%2Fb%20c") == "a/b c")
        #expect(Validation.percentDecode("%2e%2e") == "..")
        #expect(Validation.percentDecode("a+b", plusAsSpace: true) == "a b")
        #expect(Validation.percentDecode("%zz") == nil)
        #expect(Validation.percentDecode("%ff") == nil)  // not UTF-8
    }

    @Test func experimentIDsAndRunIDs() throws {
        #expect(try Validation.validateExperimentID("42") == 42)
        #expect(throws: RepriseError.self) { try Validation.validateExperimentID("abc") }
        try Validation.validateRunID("0123abcd")
        #expect(throws: RepriseError.self) { try Validation.validateRunID("-abc") }
        #expect(throws: RepriseError.self) { try Validation.validateRunID("a/b") }
    }

    @Test func errorCodesMapToStatuses() {
        #expect(RepriseError.Code.invalidParameterValue.httpStatus == 400)
        #expect(RepriseError.Code.resourceAlreadyExists.httpStatus == 400)
        #expect(RepriseError.Code.resourceDoesNotExist.httpStatus == 404)
        #expect(RepriseError.Code.invalidState.httpStatus == 400)  // the reference's 500; see httpStatus
        #expect(RepriseError.Code.internalError.httpStatus == 500)
        #expect(RepriseError.Code.notImplemented.httpStatus == 501)
        #expect(RepriseError.Code(rawValue: "SOMETHING_NEW").httpStatus == 500)
    }
}
