import Foundation

/// A small, safe Markdown subset for notes: the text is escaped first, then headings, lists, fenced
/// code, `code`, **bold**, *italics* and links to http(s) or relative URLs are recognised. No raw
/// HTML gets through.
enum Markdown {
    static func render(_ source: String) -> HTML {
        var out: [HTML] = []
        var paragraph: [String] = []
        var list: [String] = []
        var code: [String]? = nil
        func flushParagraph() {
            if !paragraph.isEmpty { out.append("<p>" + paragraph.map(inline).joined(separator: "<br>") + "</p>") }
            paragraph = []
        }
        func flushList() {
            if !list.isEmpty { out.append("<ul>" + list.map { "<li>\(inline($0))</li>" }.joined() + "</ul>") }
            list = []
        }
        for raw in source.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.hasPrefix("```") {
                if let c = code {
                    out.append("<pre><code>\(c.joined(separator: "\n"))</code></pre>")
                    code = nil
                } else {
                    flushParagraph()
                    flushList()
                    code = []
                }
                continue
            }
            if code != nil {
                code!.append(line)
                continue
            }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty {
                flushParagraph()
                flushList()
            } else if let level = heading(trimmed) {
                flushParagraph()
                flushList()
                let text = trimmed.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
                out.append("<h\(level + 2)>\(inline(text))</h\(level + 2)>")
            } else if trimmed.hasPrefix("- ") || trimmed.hasPrefix("* ") {
                flushParagraph()
                list.append(String(trimmed.dropFirst(2)))
            } else {
                flushList()
                paragraph.append(trimmed)
            }
        }
        if let c = code { out.append("<pre><code>\(c.joined(separator: "\n"))</code></pre>") }
        flushParagraph()
        flushList()
        return out.joined(separator: "\n")
    }

    static func heading(_ line: String) -> Int? {
        let hashes = line.prefix { $0 == "#" }.count
        guard (1...4).contains(hashes), line.dropFirst(hashes).first == " " else { return nil }
        return hashes
    }

    /// Inline formatting over escaped text.
    static func inline(_ text: String) -> HTML {
        var s = HTML(escaping: text).rendered
        s = replace(s, pattern: "`([^`]+)`") { "<code>\($0[1])</code>" }
        s = replace(s, pattern: "\\*\\*([^*]+)\\*\\*") { "<strong>\($0[1])</strong>" }
        s = replace(s, pattern: "(^|[^*])\\*([^*\\s][^*]*)\\*") { "\($0[1])<em>\($0[2])</em>" }
        s = replace(s, pattern: "\\[([^\\]]+)\\]\\(([^)\\s]+)\\)") { groups in
            let url = groups[2]
            // Only web and relative links; the URL is already escaped, so it cannot leave the attribute.
            // A relative link must stay on this server: `//host` and `/\host` are read by browsers
            // as another host, and a backslash anywhere counts as a slash, so neither is a link.
            let lower = url.lowercased()
            let isWeb = lower.hasPrefix("http://") || lower.hasPrefix("https://")
            let bytes = url.utf8
            let isLocal = (bytes.first == UInt8(ascii: "/") && bytes.dropFirst().first != UInt8(ascii: "/")) || bytes.first == UInt8(ascii: "#")
            guard (isWeb || isLocal), !url.contains("\\"), !lower.contains("&#") else {
                return groups[0]
            }
            return "<a href=\"\(url)\" rel=\"nofollow noopener\">\(groups[1])</a>"
        }
        // Raw on purpose: `s` is the text escaped above, with only fixed tags put around pieces of it
        // and links whose (already escaped) URL passed the checks above.
        return HTML(unsafeRaw: s)
    }

    static func replace(_ s: String, pattern: String, _ make: ([String]) -> String) -> String {
        guard let re = try? NSRegularExpression(pattern: pattern) else { return s }
        let ns = s as NSString
        var out = ""
        var last = 0
        for m in re.matches(in: s, range: NSRange(location: 0, length: ns.length)) {
            out += ns.substring(with: NSRange(location: last, length: m.range.location - last))
            let groups = (0..<m.numberOfRanges).map { i -> String in
                let r = m.range(at: i)
                return r.location == NSNotFound ? "" : ns.substring(with: r)
            }
            out += make(groups)
            last = m.range.location + m.range.length
        }
        return out + ns.substring(from: last)
    }
}
