import Foundation
import RepriseCore

// The web UI's prompt pages: the registry's prompts, one prompt's versions (template, model
// config, aliases, the runs that evaluated each version and their metrics), and a line diff of
// two versions' templates.
extension RepriseAPI {
    /// Registered-model tags that make a model a prompt and carry a version's template and config.
    enum PromptTags {
        static let isPrompt = "mlflow.prompt.is_prompt"
        static let text = "mlflow.prompt.text"
        static let modelConfig = "_mlflow_prompt_model_config"
        static let type = "_mlflow_prompt_type"
    }

    func registerPromptPages() {
        let base = config.staticPrefix
        route(.get, "/ui/prompts", access: .authenticated, uiPage { [self] _, _ in
            try await promptsPage(base: base)
        })
        route(.get, "/ui/prompts/{name}", access: .registeredModel(.read, .pathParameter("name")), uiPage { [self] call, _ in
            try await promptPage(try call.pathParameter("name"), base: base)
        })
        route(.get, "/ui/prompts/{name}/diff", access: .registeredModel(.read, .pathParameter("name")), uiPage { [self] call, _ in
            try await promptDiffPage(call, name: try call.pathParameter("name"), base: base)
        })
    }

    func promptsPage(base: String) async throws -> Page {
        let page = try await registry.searchRegisteredModels(
            try RegisteredModelSearchQuery(filter: "tags.`\(PromptTags.isPrompt)` = 'true'", orderBy: ["name ASC"], maxResults: 1000, pageToken: nil))
        var rows: [[HTML]] = []
        for m in page.items where try await callerMay(.read, registeredModel: m.name) {
            rows.append([
                "<a href=\"\(base)/ui/prompts/\(HTML.q(m.name))\">\(m.name)</a>",
                m.latestVersions.map { "v\($0.version)" as HTML }.joined(separator: ", "),
                m.aliases.map { "<code>@\($0.0)</code> → v\($0.1)" as HTML }.joined(separator: ", "), "\(HTML.time(m.lastUpdatedTime))",
                HTML(escaping: m.description),
            ])
        }
        return ("Prompts", "<h1>Prompts</h1>" + (rows.isEmpty
            ? "<p class=\"muted\">No prompts yet: <code>mlflow.genai.register_prompt(name=…, template=…)</code> registers one.</p>"
            : HTML.table(["Name", "Latest version", "Aliases", "Updated", "Description"], rows)))
    }

    /// A prompt's versions, newest first; 404 for a registered model that is not a prompt.
    func promptVersions(_ name: String) async throws -> (RegisteredModel, [ModelVersion]) {
        let model = try await registry.getRegisteredModel(name: name)
        guard model.tags.contains(where: { $0.key == PromptTags.isPrompt && $0.value == "true" }) else {
            throw RepriseError.notFound("Prompt '\(name)' not found: '\(name)' is a registered model, not a prompt.")
        }
        let filter = "name = '\(name.replacingOccurrences(of: "'", with: "''"))' AND tags.`\(PromptTags.isPrompt)` = 'true'"
        let versions = try await registry.searchModelVersions(
            try ModelVersionSearchQuery(filter: filter, orderBy: ["version_number DESC"], maxResults: 1000, pageToken: nil)).items
        return (model, versions)
    }

    func promptPage(_ name: String, base: String) async throws -> Page {
        let (model, versions) = try await promptVersions(name)
        var body: HTML = "<p class=\"muted\"><a href=\"\(base)/ui/prompts\">Prompts</a> /</p><h1>\(name)</h1>"
        if !model.description.isEmpty { body += "<p>\(model.description)</p>" }
        body += "<p class=\"muted\">Registry view: <a href=\"\(base)/ui/models/\(HTML.q(name))\">approvals and audit history</a></p>"
        if !model.aliases.isEmpty {
            body += "<h2>Aliases</h2>" + HTML.table(["Alias", "Version", "Lineage"], model.aliases.map { a, v -> [HTML] in
                ["<code>@\(a)</code>", "<a href=\"#v\(v)\">v\(v)</a>", "<a href=\"\(base)/ui/lineage?entity=\(HTML.q("alias:\(name)@\(a)"))\">graph</a>"]
            })
        }
        if versions.count >= 2 {
            // Two selects, newest against the one before by default; works without JavaScript.
            func options(_ selected: Int64) -> HTML {
                versions.map { v in "<option value=\"\(v.version)\"\(v.version == selected ? " selected" as HTML : "")>v\(v.version)</option>" as HTML }
                    .joined()
            }
            body += "<form method=\"get\" action=\"\(base)/ui/prompts/\(HTML.q(name))/diff\" class=\"inline\"><label>Compare <select name=\"from\">\(options(versions[1].version))</select></label>"
            body += " <label>with <select name=\"to\">\(options(versions[0].version))</select></label> <button>Diff</button></form>"
        }
        body += "<h2>Versions</h2>"
        for v in versions {
            let tag = { (key: String) in v.tags.first { $0.key == key }?.value }
            body += "<section class=\"card\" id=\"v\(v.version)\"><h3>v\(v.version)"
            for a in v.aliases { body += " <code>@\(a)</code>" }
            body += "</h3><p class=\"muted\">\(HTML.time(v.creationTime))\(v.userID.isEmpty ? "" : " · \(v.userID)")"
            if !v.description.isEmpty { body += " · \(v.description)" }
            body += "</p><pre class=\"prompt\">\(tag(PromptTags.text) ?? "")</pre>"
            if let config = tag(PromptTags.modelConfig) { body += "<p>Model config: <code>\(config)</code></p>" }
            let userTags = v.tags.filter { !$0.key.hasPrefix("mlflow.") && !$0.key.hasPrefix("_mlflow_") }
            if !userTags.isEmpty { body += "<p>Tags: " + userTags.map { "<code>\($0.key)=\($0.value)</code>" as HTML }.joined(separator: " ") + "</p>" }
            body += try await promptEvaluations(name, v.version, base: base)
            body += "</section>"
        }
        return ("Prompt · \(name)", body)
    }

    /// The runs that loaded or evaluated one prompt version (its lineage), with their metrics and
    /// the datasets they read.
    func promptEvaluations(_ name: String, _ version: Int64, base: String) async throws -> HTML {
        guard let repro, let graph = try? await readableLineage(try await repro.lineage(entity: "model_version:\(name)/\(version)", depth: 1))
        else { return "" }
        let root = "model_version:\(name)/\(version)"
        let runIDs = graph.edges.filter { $0.relation == "prompt_of" && $0.from == root }.map { String($0.to.dropFirst("run:".count)) }
        if runIDs.isEmpty { return "<p class=\"muted\">No run has evaluated this version yet.</p>" }
        var rows: [[HTML]] = []
        for id in runIDs.prefix(20) {
            guard let run = try? await store.getRun(id: id) else { continue }
            rows.append([
                "<a href=\"\(base)/ui/runs/\(HTML.q(id))\">\(run.info.runName.isEmpty ? String(id.prefix(8)) : run.info.runName)</a>",
                HTML.statusBadge(run.info.status.rawValue), "\(HTML.time(run.info.startTime))",
                run.metrics.sorted { $0.key < $1.key }.prefix(8).map { "\($0.key)=\(HTML.number($0.value))" as HTML }.joined(separator: ", "),
                run.datasetInputs.map { "\($0.dataset.name)" as HTML }.joined(separator: ", "),
            ])
        }
        return "<h4>Evaluations</h4>" + HTML.table(["Run", "Status", "Started", "Metrics", "Datasets"], rows)
    }

    func promptDiffPage(_ call: Call, name: String, base: String) async throws -> Page {
        let (_, versions) = try await promptVersions(name)
        func version(_ param: String) throws -> ModelVersion {
            guard let text = call.query[param]?.first, let n = Int64(text.hasPrefix("v") ? String(text.dropFirst()) : text) else {
                throw RepriseError.invalid("Name the versions to compare: ?from=1&to=2.")
            }
            guard let v = versions.first(where: { $0.version == n }) else { throw RepriseError.notFound("Prompt '\(name)' has no version \(n).") }
            return v
        }
        let a = try version("from")
        let b = try version("to")
        let text = { (v: ModelVersion) in v.tags.first { $0.key == PromptTags.text }?.value ?? "" }
        var body: HTML = "<p class=\"muted\"><a href=\"\(base)/ui/prompts\">Prompts</a> / <a href=\"\(base)/ui/prompts/\(HTML.q(name))\">\(name)</a> /</p>"
        body += "<h1>\(name): v\(a.version) → v\(b.version)</h1>"
        guard let lines = LineDiff.diff(text(a), text(b)) else {
            return ("Diff · \(name)", body + "<p class=\"error\" role=\"alert\">These templates are too long to compare line by line here (more than \(LineDiff.maxLines) lines).</p>")
        }
        let added = lines.filter { $0.kind == .added }.count
        let removed = lines.filter { $0.kind == .removed }.count
        body += "<p class=\"muted\">\(added) line(s) added, \(removed) removed.</p>"
        body += "<table class=\"diff\" aria-label=\"template diff\"><tbody>"
        for line in lines {
            let (cls, mark): (HTML, HTML) =
                switch line.kind {
                case .same: ("same", " ")
                case .added: ("add", "+")
                case .removed: ("del", "-")
                }
            body += "<tr class=\"\(cls)\"><td class=\"mark\">\(mark)</td><td><pre>\(line.text)</pre></td></tr>"
        }
        body += "</tbody></table>"
        let config = { (v: ModelVersion) in v.tags.first { $0.key == PromptTags.modelConfig }?.value }
        if config(a) != config(b) {
            body += "<h2>Model config</h2>" + HTML.table(["Version", "Config"], [a, b].map { v -> [HTML] in
                ["v\(v.version)", "<code>\(config(v) ?? "(none)")</code>"]
            })
        }
        return ("Diff · \(name)", body)
    }
}

/// A line diff (longest common subsequence), for the prompt pages.
enum LineDiff {
    enum Kind { case same, added, removed }
    struct Line: Equatable {
        var kind: Kind
        var text: String
    }

    /// The LCS table is lines × lines: past this, no diff (bounded memory and time per request).
    static let maxLines = 2_000

    static func diff(_ old: String, _ new: String) -> [Line]? {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard a.count <= maxLines, b.count <= maxLines else { return nil }
        // lcs[i][j]: the common subsequence length of a[i...] and b[j...], in one flat array.
        let width = b.count + 1
        var lcs = [Int32](repeating: 0, count: (a.count + 1) * width)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i * width + j] = a[i] == b[j] ? lcs[(i + 1) * width + j + 1] + 1 : max(lcs[(i + 1) * width + j], lcs[i * width + j + 1])
            }
        }
        var out: [Line] = []
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                out.append(Line(kind: .same, text: a[i]))
                i += 1
                j += 1
            } else if i < a.count, j == b.count || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
                // Removals before additions, as diffs are read.
                out.append(Line(kind: .removed, text: a[i]))
                i += 1
            } else {
                out.append(Line(kind: .added, text: b[j]))
                j += 1
            }
        }
        return out
    }
}
