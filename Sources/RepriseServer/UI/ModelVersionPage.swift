import Foundation
import NIOCore
import RepriseArtifacts
import RepriseCore

// One model version in the web UI: where it came from (source run, logged model), what it takes
// and gives (the MLmodel file's signature, the saved input example), its description, tags,
// aliases and stage, its approvals, its lineage and its audit history.
extension RepriseAPI {
    func registerModelVersionPage() {
        let base = config.staticPrefix
        route(.get, "/ui/models/{name}/versions/{version}", access: .registeredModel(.read, .pathParameter("name")), uiPage { [self] call, csrf in
            try await modelVersionPage(call, csrf: csrf, name: try call.pathParameter("name"), version: try call.pathParameter("version"), base: base)
        })
    }

    func modelVersionPage(_ call: Call, csrf: String, name: String, version text: String, base: String) async throws -> Page {
        guard let number = Int64(text.hasPrefix("v") ? String(text.dropFirst()) : text), number > 0 else {
            throw RepriseError.invalid("Invalid model version '\(text)': a version is a positive integer, such as 3.")
        }
        let v = try await registry.getModelVersion(name: name, version: number)
        var body: HTML = "<p class=\"muted\"><a href=\"\(base)/ui/models\">Models</a> / <a href=\"\(base)/ui/models/\(HTML.q(name))\">\(name)</a> /</p>"
        body += "<h1>\(name) v\(v.version)"
        for a in v.aliases { body += " <code>@\(a)</code>" }
        body += "</h1>"
        if !v.description.isEmpty { body += "<p>\(v.description)</p>" }
        var rows: [[HTML]] = [
            ["Stage", HTML(escaping: v.currentStage)], ["Status", HTML(escaping: v.status)],
            ["Created", "\(HTML.time(v.creationTime))\(v.userID.isEmpty ? "" : " by \(v.userID)")"],
            ["Updated", "\(HTML.time(v.lastUpdatedTime))"], ["Source", "<code>\(v.source)</code>"],
        ]
        var run: Run?
        if !v.runID.isEmpty, let r = try? await store.getRun(id: v.runID), try await callerMay(.read, experiment: r.info.experimentID) {
            run = r
            rows.append(["Source run", "<a href=\"\(base)/ui/runs/\(HTML.q(r.info.runID))\">\(r.info.runName.isEmpty ? r.info.runID : r.info.runName)</a> (\(HTML.statusBadge(r.info.status.rawValue)))"])
        } else if !v.runID.isEmpty {
            rows.append(["Source run", "<code>\(v.runID)</code>"])
        }
        var logged: LoggedModel?
        if !v.modelID.isEmpty {
            logged = try? await store.getLoggedModel(id: v.modelID, allowDeleted: true)
            rows.append(["Logged model", "<code>\(v.modelID)</code>\(logged.map { " (\($0.name))" as HTML } ?? "")"])
        }
        body += HTML.table(["", ""], rows)

        // What the model takes and gives, from its MLmodel file.
        let location = logged?.artifactURI ?? (v.storageLocation.isEmpty ? v.source : v.storageLocation)
        body += "<h2>Signature</h2>"
        if let text = try? await smallArtifact(location, "MLmodel", limit: 256 * 1024) {
            let file = MLmodelFile(text)
            if !file.flavors.isEmpty { body += "<p>Flavors: " + file.flavors.map { "<code>\($0)</code>" as HTML }.joined(separator: " ") + "</p>" }
            for (title, spec) in [("Inputs", file.signatureInputs), ("Outputs", file.signatureOutputs), ("Params", file.signatureParams)] {
                guard let spec else { continue }
                body += "<h3>\(title)</h3>" + Self.signatureTable(spec)
            }
            if file.signatureInputs == nil && file.signatureOutputs == nil { body += "<p class=\"muted\">The model was logged without a signature.</p>" }
            if let path = file.inputExamplePath, let example = try? await smallArtifact(location, path, limit: 64 * 1024) {
                let shown = (try? JSONValue.parse(example)).map(\.jsonString) ?? example
                body += "<h3>Input example</h3><pre>\(shown)</pre>"
            }
        } else {
            body += "<p class=\"muted\">No MLmodel file readable at <code>\(location)</code>.</p>"
        }
        if !v.tags.isEmpty { body += "<h2>Tags</h2>" + HTML.table(["Key", "Value"], v.tags.map { [HTML(escaping: $0.key), HTML(escaping: $0.value)] }) }
        if let run, !run.metrics.isEmpty {
            body += "<h2>Metrics of the source run</h2>" + HTML.table(["Metric", "Value"], run.metrics.sorted { $0.key < $1.key }.prefix(50).map {
                [HTML(escaping: $0.key), "\(HTML.number($0.value))"]
            })
        }
        let requests = try await governance.approvalRequests(model: name, state: nil).filter { $0.targetVersion == number }
        body += "<h2>Approvals</h2>" + (requests.isEmpty
            ? "<p class=\"muted\">No approval request has named this version.</p>"
            : requests.map { Self.requestCard($0, csrf: csrf, call: call, base: base) }.joined())
        if let repro, let found = try? await repro.lineage(entity: "model_version:\(name)/\(number)", depth: 6) {
            body += "<h2>Lineage</h2>" + Self.lineageSVG(try await readableLineage(found), base: base)
        }
        let events = try await governance.auditEvents(entityType: nil, entityID: "\(name)/\(number)", afterSeq: 0, limit: 500)
        if !events.isEmpty {
            body += "<h2>Audit history</h2>" + HTML.table(["#", "When", "Who", "Action", "Details"], events.reversed().map { e -> [HTML] in
                ["\(e.seq)", HTML(escaping: HTML.time(e.time)), HTML(escaping: e.actor), HTML(escaping: e.action), "<code>\(e.summary)</code>"]
            })
        }
        return ("\(name) v\(number)", body)
    }

    /// A small file under an artifact location this server serves, as text; nil when absent or larger than `limit`.
    func smallArtifact(_ root: String, _ path: String, limit: Int) async throws -> String? {
        let (repo, rootParts) = try repository(for: root)
        let parts = rootParts + (try Validation.artifactPathComponents(path))
        guard case .file(let size) = try await repo.kind(parts), size <= limit else { return nil }
        var bytes = ByteBuffer()
        try await repo.read(parts) { chunk in
            var c = chunk
            bytes.writeBuffer(&c)
        }
        return String(buffer: bytes)
    }

    /// A signature's column spec (`[{"type": "double", "name": "x", "required": true}, …]`) as a table.
    static func signatureTable(_ spec: String) -> HTML {
        guard case .array(let columns)? = try? JSONValue.parse(spec) else { return "<pre>\(spec)</pre>" }
        return HTML.table(["Name", "Type", "Required"], columns.map { c -> [HTML] in
            var type = c["type"]?.stringValue ?? ""
            if type == "tensor", let t = c["tensor-spec"] { type = "tensor \(t["dtype"]?.stringValue ?? "") \(t["shape"]?.jsonString ?? "")" }
            return [HTML(escaping: c["name"]?.stringValue ?? "(unnamed)"), HTML(escaping: type), HTML(escaping: c["required"] == .bool(false) ? "no" : "yes")]
        })
    }
}

/// The parts of an MLmodel file (YAML, as MLflow writes it) the version page shows. Reads only
/// what it needs: top-level keys, their indented children, quoted scalars folded over lines.
struct MLmodelFile {
    var flavors: [String] = []
    var signatureInputs: String?
    var signatureOutputs: String?
    var signatureParams: String?
    var inputExamplePath: String?

    init(_ text: String) {
        var section = ""
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)[...]
        while let line = lines.popFirst() {
            if line.isEmpty || line.hasPrefix("#") { continue }
            let indent = line.prefix { $0 == " " }.count
            let trimmed = line.dropFirst(indent)
            guard let colon = trimmed.firstIndex(of: ":") else { continue }
            let key = String(trimmed[..<colon])
            var value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if indent == 0 {
                section = key
                continue
            }
            // A quoted scalar may fold over the following, more indented lines.
            if let quote = value.first, quote == "'" || quote == "\"", !Self.closed(value, quote) {
                while let next = lines.first, next.prefix(while: { $0 == " " }).count > indent {
                    value += " " + next.trimmingCharacters(in: .whitespaces)
                    lines.removeFirst()
                    if Self.closed(value, quote) { break }
                }
            }
            let scalar = Self.unquote(value)
            switch (section, indent) {
            case ("flavors", 2): flavors.append(key)
            case ("signature", 2) where key == "inputs": signatureInputs = scalar
            case ("signature", 2) where key == "outputs": signatureOutputs = scalar
            case ("signature", 2) where key == "params": signatureParams = scalar == "null" ? nil : scalar
            case ("saved_input_example_info", 2) where key == "artifact_path": inputExamplePath = scalar
            default: break
            }
        }
    }

    static func closed(_ value: String, _ quote: Character) -> Bool {
        guard value.count >= 2, value.last == quote else { return false }
        if quote == "'" {
            // '' inside single quotes is a literal quote: the scalar ends at an odd run of quotes.
            let run = value.reversed().prefix { $0 == "'" }.count
            return run % 2 == 1
        }
        return !value.dropLast().hasSuffix("\\")
    }

    static func unquote(_ value: String) -> String {
        if value.count >= 2, value.first == "'", value.last == "'" {
            return String(value.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
        }
        if value.count >= 2, value.first == "\"", value.last == "\"", let decoded = try? JSONValue.parse(value), let s = decoded.stringValue {
            return s
        }
        return value
    }
}
