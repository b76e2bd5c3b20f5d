import Foundation
import RepriseCore

/// One element of an S3 XML response: its local name (namespace prefix dropped), its text and its
/// child elements.
struct XMLNode: Sendable, Equatable {
    var name: String
    var text: String = ""
    var children: [XMLNode] = []

    /// The first child named `name`.
    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }
    /// Every child named `name`.
    func all(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    func value(_ name: String) -> String? { child(name)?.text }
}

/// A small, strict XML reader for the answers S3 sends (list results, errors, multipart upload
/// ids): elements, attributes (skipped), character data, CDATA, comments and processing
/// instructions, the five named entities and numeric character references. A document type
/// declaration is refused, so no entity can expand; nesting is limited.
///
/// S3's answers are small and shallow, and what the repository needs from them is a handful of
/// elements, so a reader of this size is easier to check than a general parser.
enum S3XML {
    struct ParseError: Error, Equatable, CustomStringConvertible {
        var reason: String
        var description: String { "Malformed XML from the artifact store: \(reason)" }
    }

    static let maxDepth = 32

    /// Parses `bytes` and returns the root element.
    static func parse<C: Collection>(_ bytes: C) throws -> XMLNode where C.Element == UInt8 {
        let b = Array(bytes)
        var i = 0
        var stack: [XMLNode] = []
        var root: XMLNode?

        func fail(_ reason: String) -> ParseError { ParseError(reason: reason) }
        func starts(_ s: String, at index: Int) -> Bool {
            let u = Array(s.utf8)
            return index + u.count <= b.count && Array(b[index..<(index + u.count)]) == u
        }
        func find(_ s: String, from index: Int) -> Int? {
            let u = Array(s.utf8)
            guard let first = u.first, u.count <= b.count else { return nil }
            var j = index
            while j + u.count <= b.count {
                if b[j] == first && Array(b[j..<(j + u.count)]) == u { return j }
                j += 1
            }
            return nil
        }
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
        func localName(_ raw: [UInt8]) throws -> String {
            guard !raw.isEmpty, let s = String(bytes: raw, encoding: .utf8) else { throw fail("an element without a name") }
            if let colon = s.lastIndex(of: ":") { return String(s[s.index(after: colon)...]) }
            return s
        }
        func appendText(_ text: String) throws {
            guard !stack.isEmpty else {
                if text.allSatisfy({ $0.isWhitespace }) { return }
                throw fail("text outside the root element")
            }
            stack[stack.count - 1].text += text
        }

        while i < b.count {
            if b[i] != UInt8(ascii: "<") {
                let end = b[i...].firstIndex(of: UInt8(ascii: "<")) ?? b.count
                try appendText(try decodeEntities(b[i..<end]))
                i = end
                continue
            }
            if starts("<?", at: i) {
                guard let end = find("?>", from: i + 2) else { throw fail("an unterminated processing instruction") }
                i = end + 2
            } else if starts("<!--", at: i) {
                guard let end = find("-->", from: i + 4) else { throw fail("an unterminated comment") }
                i = end + 3
            } else if starts("<![CDATA[", at: i) {
                guard let end = find("]]>", from: i + 9) else { throw fail("an unterminated CDATA section") }
                guard let text = String(bytes: b[(i + 9)..<end], encoding: .utf8) else { throw fail("CDATA that is not UTF-8") }
                try appendText(text)
                i = end + 3
            } else if starts("<!", at: i) {
                throw fail("a document type declaration (refused)")
            } else if starts("</", at: i) {
                guard let end = b[i...].firstIndex(of: UInt8(ascii: ">")) else { throw fail("an unterminated end tag") }
                var nameEnd = end
                while nameEnd > i + 2 && isSpace(b[nameEnd - 1]) { nameEnd -= 1 }
                let name = try localName(Array(b[(i + 2)..<nameEnd]))
                guard let open = stack.popLast(), open.name == name else { throw fail("a mismatched end tag </\(name)>") }
                if stack.isEmpty {
                    guard root == nil else { throw fail("more than one root element") }
                    root = open
                } else {
                    stack[stack.count - 1].children.append(open)
                }
                i = end + 1
            } else {
                // A start tag: the name, then attributes (skipped, with quoted values that may hold '>').
                var j = i + 1
                while j < b.count && !isSpace(b[j]) && b[j] != UInt8(ascii: ">") && b[j] != UInt8(ascii: "/") { j += 1 }
                let name = try localName(Array(b[(i + 1)..<j]))
                var quote: UInt8? = nil
                var selfClosing = false
                while j < b.count {
                    let c = b[j]
                    if let q = quote {
                        if c == q { quote = nil }
                    } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                        quote = c
                    } else if c == UInt8(ascii: ">") {
                        selfClosing = j > i + 1 && b[j - 1] == UInt8(ascii: "/")
                        break
                    }
                    j += 1
                }
                guard j < b.count else { throw fail("an unterminated start tag <\(name)") }
                guard root == nil else { throw fail("more than one root element") }
                guard stack.count < maxDepth else { throw fail("elements nested deeper than \(maxDepth)") }
                let node = XMLNode(name: name)
                if selfClosing {
                    if stack.isEmpty { root = node } else { stack[stack.count - 1].children.append(node) }
                } else {
                    stack.append(node)
                }
                i = j + 1
            }
        }
        guard stack.isEmpty else { throw fail("an unclosed element <\(stack[stack.count - 1].name)>") }
        guard let root else { throw fail("no root element") }
        return root
    }

    /// Character data with `&name;` and `&#…;` references replaced.
    static func decodeEntities(_ bytes: ArraySlice<UInt8>) throws -> String {
        guard let s = String(bytes: bytes, encoding: .utf8) else { throw ParseError(reason: "text that is not UTF-8") }
        guard s.contains("&") else { return s }
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semi) <= 12 else {
                throw ParseError(reason: "an unterminated entity reference")
            }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "lt": out += "<"
            case "gt": out += ">"
            case "amp": out += "&"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                var scalar: UInt32?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    scalar = UInt32(entity.dropFirst(2), radix: 16)
                } else if entity.hasPrefix("#") {
                    scalar = UInt32(entity.dropFirst(), radix: 10)
                }
                guard let v = scalar, let u = Unicode.Scalar(v) else {
                    throw ParseError(reason: "an unknown entity &\(entity.prefix(10));")
                }
                out.unicodeScalars.append(u)
            }
            rest = rest[rest.index(after: semi)...]
        }
        out += rest
        return out
    }

    /// `&`, `<`, `>`, `"` and `'` escaped, for text written into a request body.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension S3XML {
    /// The body of CompleteMultipartUpload: the parts in the order given (S3 wants them ascending).
    /// Writing and reading S3's XML stay in this one file.
    static func completeMultipartUpload(_ parts: [UploadedPart]) -> String {
        var xml = "<CompleteMultipartUpload>"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(escape(part.etag))</ETag></Part>"
        }
        return xml + "</CompleteMultipartUpload>"
    }

    /// The upload id of an InitiateMultipartUploadResult, nil for any other document.
    static func uploadID<C: Collection>(_ bytes: C) -> String? where C.Element == UInt8 {
        guard let root = try? parse(bytes), root.name == "InitiateMultipartUploadResult", let id = root.value("UploadId"), !id.isEmpty
        else { return nil }
        return id
    }

    /// The error inside a 200 answer to CompleteMultipartUpload (S3 can fail after it started
    /// answering), nil when the document is not an error.
    static func embeddedError<C: Collection>(_ bytes: C) -> S3ErrorBody? where C.Element == UInt8 {
        guard let root = try? parse(bytes), root.name == "Error" else { return nil }
        return S3ErrorBody(code: root.value("Code"), message: root.value("Message"))
    }
}

/// One object of a listing.
struct S3Object: Sendable, Equatable {
    var key: String
    var size: Int64
}

/// One page of a ListObjectsV2 answer.
struct S3ListPage: Sendable, Equatable {
    var objects: [S3Object] = []
    /// The `CommonPrefixes` (the "folders" under a delimiter), each ending with the delimiter.
    var commonPrefixes: [String] = []
    var isTruncated = false
    var nextContinuationToken: String?

    /// Reads a `ListBucketResult`. With `urlEncoded` (the request asked for `encoding-type=url`,
    /// so any key can travel in XML), keys and prefixes are percent-decoded, `+` as a space.
    static func parse<C: Collection>(_ bytes: C, urlEncoded: Bool) throws -> S3ListPage where C.Element == UInt8 {
        let root = try S3XML.parse(bytes)
        guard root.name == "ListBucketResult" else {
            throw S3XML.ParseError(reason: "expected ListBucketResult, got \(root.name)")
        }
        func decode(_ s: String) throws -> String {
            guard urlEncoded else { return s }
            guard let d = Validation.percentDecode(s, plusAsSpace: true) else {
                throw S3XML.ParseError(reason: "a key with a malformed escape")
            }
            return d
        }
        var page = S3ListPage()
        for c in root.all("Contents") {
            guard let key = c.value("Key") else { throw S3XML.ParseError(reason: "an object without a Key") }
            let size = c.value("Size").flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } ?? 0
            guard size >= 0 else { throw S3XML.ParseError(reason: "a negative object size") }
            page.objects.append(S3Object(key: try decode(key), size: size))
        }
        for p in root.all("CommonPrefixes") {
            guard let prefix = p.value("Prefix") else { continue }
            page.commonPrefixes.append(try decode(prefix))
        }
        page.isTruncated = root.value("IsTruncated")?.trimmingCharacters(in: .whitespaces).lowercased() == "true"
        page.nextContinuationToken = root.value("NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
        if page.isTruncated && page.nextContinuationToken == nil {
            throw S3XML.ParseError(reason: "a truncated listing without a continuation token")
        }
        return page
    }

    /// The entries directly under `prefix` (which ends with `/`, or is empty for the bucket's
    /// root), as an artifact listing: objects become files, common prefixes folders; an object
    /// whose name is empty (a folder marker such as `dir/`) is skipped.
    func entries(under prefix: String) -> [ArtifactFileInfo] {
        var out: [ArtifactFileInfo] = []
        // Bytes, not characters: a '/' joined to a mark after it is still a separator (see
        // `Validation.pathComponents`).
        let slash = UInt8(ascii: "/")
        for o in objects {
            guard let name = Validation.dropPrefix(prefix, from: o.key), !name.isEmpty, !name.utf8.contains(slash) else { continue }
            out.append(ArtifactFileInfo(path: name, isDir: false, fileSize: o.size))
        }
        for p in commonPrefixes {
            guard let rest = Validation.dropPrefix(prefix, from: p) else { continue }
            let name = Validation.trimmingSlashes(rest, leading: false)
            if name.isEmpty || name.utf8.contains(slash) { continue }
            out.append(ArtifactFileInfo(path: name, isDir: true, fileSize: nil))
        }
        return out
    }
}

/// An S3 error answer (`<Error><Code>…</Code><Message>…</Message></Error>`).
struct S3ErrorBody: Sendable, Equatable {
    var code: String?
    var message: String?

    /// Reads an error document; anything unreadable gives an empty one (the status still counts).
    static func parse<C: Collection>(_ bytes: C) -> S3ErrorBody where C.Element == UInt8 {
        guard !bytes.isEmpty, let root = try? S3XML.parse(bytes), root.name == "Error" else { return S3ErrorBody() }
        return S3ErrorBody(code: root.value("Code"), message: root.value("Message"))
    }
}
