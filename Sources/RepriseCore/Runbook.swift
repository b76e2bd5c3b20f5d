import Foundation

/// Text made safe for HTML content and attribute values.
public func htmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// Quotes a word for a POSIX shell.
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// What a rebuild of a run needs from its tags: one rule for `reprise reproduce` and the run book.
public enum Rebuild {
    /// The recorded command (`reprise.command`, a JSON array of words); empty when not recorded.
    public static func command(_ tags: [String: String]) -> [String] {
        guard let text = tags[PassportTag.command], case .array(let items)? = try? JSONValue.parse(text) else { return [] }
        return items.compactMap(\.stringValue)
    }

    /// The commit: Reprise's tag, else the one the mlflow client records.
    public static func commit(_ tags: [String: String]) -> String {
        tags[PassportTag.commit].flatMap { $0.isEmpty ? nil : $0 } ?? tags["mlflow.source.git.commit"] ?? ""
    }

    /// What the run lacks for a rebuild, as phrases ("the command (tag …)"); empty when nothing.
    public static func missing(_ tags: [String: String]) -> [String] {
        var out: [String] = []
        if command(tags).isEmpty { out.append("the command (tag \(PassportTag.command); start runs with `reprise run`)") }
        if commit(tags).isEmpty { out.append("the code commit (tag \(PassportTag.commit))") }
        return out
    }
}

/// What a run book is made of: a run as the server or a client sees it.
public struct RunbookInput: Sendable {
    public var runID: String
    public var name: String
    public var experimentID: String
    public var status: String
    public var startTime: Int64
    public var endTime: Int64?
    public var tags: [String: String]
    public var params: [String: String]
    /// Latest value per metric.
    public var metrics: [String: Double]
    public var baselineID: String?
    public var baselineMetrics: [String: Double]
    /// `[Reproduction.json]` and a `LineageGraph.json`, when known.
    public var reproductions: JSONValue?
    public var lineage: JSONValue?
    /// Where `reproduce.sh` finds the server by default.
    public var trackingURI: String

    public init(
        runID: String, name: String, experimentID: String, status: String, startTime: Int64, endTime: Int64?, tags: [String: String],
        params: [String: String], metrics: [String: Double], baselineID: String? = nil, baselineMetrics: [String: Double] = [:],
        reproductions: JSONValue? = nil, lineage: JSONValue? = nil, trackingURI: String
    ) {
        self.runID = runID
        self.name = name
        self.experimentID = experimentID
        self.status = status
        self.startTime = startTime
        self.endTime = endTime
        self.tags = tags
        self.params = params
        self.metrics = metrics
        self.baselineID = baselineID
        self.baselineMetrics = baselineMetrics
        self.reproductions = reproductions
        self.lineage = lineage
        self.trackingURI = trackingURI
    }

    public var command: [String] { Rebuild.command(tags) }

    public var dataInputs: [JSONValue] {
        guard let text = tags[PassportTag.dataInputs], case .array(let items)? = try? JSONValue.parse(text) else { return [] }
        return items
    }

    public var seeds: [(String, String)] {
        var out: [(String, String)] = []
        if let s = tags[PassportTag.seed] { out.append(("root", s)) }
        for (k, v) in tags.sorted(by: { $0.key < $1.key }) where k.hasPrefix(PassportTag.seedPrefix) {
            out.append((String(k.dropFirst(PassportTag.seedPrefix.count)), v))
        }
        return out
    }

    /// Declared tolerances by metric, as written (`accuracy=abs:0.01`).
    public var tolerances: [String: String] {
        var out: [String: String] = [:]
        for token in (tags[PassportTag.tolerances] ?? "").split(separator: " ") {
            if let eq = token.lastIndex(of: "="), eq != token.startIndex { out[String(token[..<eq])] = String(token) }
        }
        return out
    }

    public var modelMetrics: [(String, Double)] { metrics.filter { !$0.key.hasPrefix("system/") }.sorted { $0.key < $1.key } }
}

/// The run book: a reproducibility report (JSON, Markdown, HTML) and `reproduce.sh`. Pure rendering,
/// shared by `reprise runbook` and the web UI.
public enum RunbookDocument {
    public struct Output: Sendable {
        public var json: JSONValue
        public var markdown: String
        public var html: String
        /// The HTML sections without the page around them, for embedding.
        public var htmlBody: String
        public var script: String
        /// What a rebuild needs that the run does not record (empty when it can be reproduced).
        public var missing: [String]
    }

    public static func build(_ r: RunbookInput) -> Output {
        let commit = Rebuild.commit(r.tags)
        let repo = r.tags[PassportTag.repo] ?? ""
        let tolerances = r.tolerances
        let missing = Rebuild.missing(r.tags)
        // A script for a run that cannot be rebuilt refuses to start, rather than reproduce the wrong thing.
        let refusal = missing.isEmpty ? "" : """
            echo "Run \(r.runID) cannot be reproduced: it does not record \(missing.joined(separator: " or ")). Start runs with \\`reprise run\\` to record them." >&2
            exit 2

            """

        // The script.
        let tolArgs = r.tolerances.sorted { $0.key < $1.key }.map { " --tolerance \(shellQuote($0.value))" }.joined()
        let script = """
            #!/usr/bin/env bash
            # Reproduces run \(r.runID) (\(r.name)) on a clean machine.
            # Generated by `reprise runbook` on \(ISO8601DateFormatter().string(from: Date())).
            # Needs: git, the reprise binary (or REPRISE=/path/to/reprise), access to the tracking server, the input data
            # at the recorded paths. Run it inside a clone of the repository, or anywhere when the repository is reachable.
            # REPRISE_SETUP_VENV=1 first recreates the recorded Python packages (pip freeze) in ./.reprise-venv.
            set -euo pipefail
            \(refusal)export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-\(r.trackingURI)}"
            REPRISE="${REPRISE:-reprise}"
            COMMIT=\(shellQuote(commit))
            REPO=\(shellQuote(repo))
            if ! git cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
              if [ -z "$REPO" ]; then
                echo "Run this inside a clone of the repository that has commit $COMMIT." >&2
                exit 2
              fi
              git clone --quiet "$REPO" reprise-source
              cd reprise-source
            fi
            if [ "${REPRISE_SETUP_VENV:-0}" = 1 ]; then
              python3 -m venv .reprise-venv
              "$REPRISE" artifacts get \(r.runID) reprise/env/pip-freeze.txt > .reprise-requirements.txt
              .reprise-venv/bin/pip install --quiet -r .reprise-requirements.txt
              export PATH="$PWD/.reprise-venv/bin:$PATH"
            fi
            exec "$REPRISE" reproduce \(r.runID)\(tolArgs) "$@"

            """

        // The structured report.
        var metricRows: [JSONValue] = []
        for (k, v) in r.modelMetrics {
            var row = JSONObject([("metric", .string(k)), ("value", .double(v))])
            row["tolerance"] = .string(tolerances[k] ?? "exact (none declared)")
            if let b = r.baselineMetrics[k] {
                row["baseline"] = .double(b)
                row["delta_vs_baseline"] = .double(v - b)
            }
            metricRows.append(.object(row))
        }
        let env = [PassportTag.envOS, PassportTag.envKernel, PassportTag.envCPU, PassportTag.envCPUCount, PassportTag.envMemory, PassportTag.envGPU,
                   PassportTag.envContainer, PassportTag.envPython, PassportTag.envLockFiles, PassportTag.envLockDigest, PassportTag.envDigest]
        let steps = [
            "git clone \(repo.isEmpty ? "<the repository>" : repo) src && cd src",
            "git checkout --detach \(commit.isEmpty ? "<commit unknown>" : commit)",
            r.tags[PassportTag.patchSHA256].map { "apply the uncommitted patch: artifact reprise/code.patch (sha256 \($0))" },
            r.dataInputs.isEmpty ? nil : "check the data: \(r.dataInputs.compactMap { $0["path"]?.stringValue }.joined(separator: ", ")) must hash to the digests below",
            "recreate the environment: artifact reprise/env/pip-freeze.txt (and the other lock files listed)",
            "cd \(r.tags[PassportTag.workdir].flatMap { $0.isEmpty ? nil : $0 } ?? ".") && REPRISE_SEED=\(r.tags[PassportTag.seed] ?? "<seed>") MLFLOW_TRACKING_URI=... \(r.command.map(shellQuote).joined(separator: " "))",
            "compare the metrics below within their tolerances — or do all of this with: reprise reproduce \(r.runID)\(tolArgs)",
        ].compactMap { $0 }
        let json: JSONValue = [
            "run": ["id": .string(r.runID), "name": .string(r.name), "experiment_id": .string(r.experimentID), "status": .string(r.status),
                    "start_time": .int(r.startTime), "end_time": r.endTime.map(JSONValue.int) ?? .null],
            "purpose": .string(r.tags[PassportTag.purpose] ?? ""), "owner": .string(r.tags[PassportTag.owner] ?? r.tags["mlflow.user"] ?? ""),
            "steps": .array(steps.map(JSONValue.string)),
            "code": ["repo": .string(repo), "commit": .string(commit), "branch": .string(r.tags[PassportTag.branch] ?? ""),
                     "dirty": .string(r.tags[PassportTag.dirty] ?? "unknown"), "patch_sha256": .string(r.tags[PassportTag.patchSHA256] ?? ""),
                     "workdir": .string(r.tags[PassportTag.workdir] ?? "")],
            "command": .array(r.command.map(JSONValue.string)),
            "data": .array(r.dataInputs),
            "environment": .object(JSONObject(env.map { (String($0.dropFirst("reprise.env.".count)), JSONValue.string(r.tags[$0] ?? "")) })),
            "params": .object(JSONObject(r.params.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })),
            "seeds": .object(JSONObject(r.seeds.map { ($0.0, JSONValue.string($0.1)) })),
            "metrics": .array(metricRows),
            "baseline": r.baselineID.map { .string($0) } ?? .null,
            "compliance": .string(r.tags[PassportTag.compliant].map { $0 == "true" ? "complete" : "missing \(r.tags[PassportTag.complianceMissing] ?? "?")" } ?? "no policy"),
            "reproductions": r.reproductions ?? .array([]),
            "lineage": r.lineage ?? .null,
            "fingerprint": .string(r.tags[PassportTag.fingerprint] ?? ""),
            "missing": .array(missing.map(JSONValue.string)),
        ]
        return Output(json: json, markdown: markdown(json), html: html(json), htmlBody: htmlBody(json), script: script, missing: missing)
    }

    static func s(_ v: JSONValue?) -> String {
        switch v {
        case .string(let x)?: return x
        case .int(let i)?: return String(i)
        case .double(let d)?: return String(d)
        case .bool(let b)?: return String(b)
        case .null?, nil: return ""
        default: return v!.jsonString
        }
    }

    /// Keeps table cells on one line and their pipes literal.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func sections(_ j: JSONValue) -> [(title: String, rows: [[String]], header: [String]?, text: [String])] {
        var out: [(String, [[String]], [String]?, [String])] = []
        let run = j["run"]
        out.append(("Summary", [["Run", s(run?["id"]) + " (" + s(run?["name"]) + ")"], ["Experiment", s(run?["experiment_id"])],
                                ["Status", s(run?["status"])], ["Owner", s(j["owner"])], ["Purpose", s(j["purpose"])],
                                ["Compliance", s(j["compliance"])], ["Fingerprint", s(j["fingerprint"])]], ["", ""], []))
        if case .array(let missing)? = j["missing"], !missing.isEmpty {
            out.append(("Cannot be reproduced as recorded", [], nil, [
                "1. The run does not record \(missing.map { s($0) }.joined(separator: " or ")); reproduce.sh refuses to run. Start runs with `reprise run` to record what a rebuild needs.",
            ]))
        }
        if case .array(let steps)? = j["steps"] {
            out.append(("Reproduce on a clean machine", [], nil, steps.enumerated().map { "\($0.offset + 1). \(s($0.element))" }))
        }
        let code = j["code"]
        out.append(("Code", [["Repository", s(code?["repo"])], ["Commit", s(code?["commit"])], ["Branch", s(code?["branch"])],
                             ["Dirty", s(code?["dirty"])], ["Patch SHA-256", s(code?["patch_sha256"])], ["Working directory", s(code?["workdir"])],
                             ["Command", (j["command"].flatMap { if case .array(let a) = $0 { return a.map { shellQuote(s($0)) }.joined(separator: " ") } else { return nil } }) ?? ""]],
                    ["", ""], []))
        if case .array(let data)? = j["data"], !data.isEmpty {
            out.append(("Data", data.map { [s($0["path"]), s($0["digest"]), s($0["files"]), s($0["bytes"])] }, ["Input", "SHA-256 (manifest root)", "Files", "Bytes"], []))
        }
        if case .object(let env)? = j["environment"] { out.append(("Environment", env.members.map { [$0.0, s($0.1)] }, ["", ""], [])) }
        if case .object(let p)? = j["params"], !p.members.isEmpty { out.append(("Parameters", p.members.map { [$0.0, s($0.1)] }, ["Param", "Value"], [])) }
        if case .object(let p)? = j["seeds"] { out.append(("Seeds", p.members.map { [$0.0, s($0.1)] }, ["Seed", "Value"], [])) }
        if case .array(let ms)? = j["metrics"] {
            out.append(("Metrics", ms.map { [s($0["metric"]), s($0["value"]), s($0["tolerance"]), s($0["baseline"]), s($0["delta_vs_baseline"])] },
                        ["Metric", "Value", "Tolerance", "Baseline", "Delta"], []))
        }
        if case .array(let rs)? = j["reproductions"], !rs.isEmpty {
            out.append(("Reproductions", rs.map { [s($0["verdict"]), s($0["rerun_run_id"]), s($0["summary"])] }, ["Verdict", "Rerun", "Summary"], []))
        }
        if case .array(let edges)? = j["lineage"]?["edges"], !edges.isEmpty {
            out.append(("Lineage", edges.map { [s($0["from"]), s($0["relation"]), s($0["to"])] }, ["From", "Relation", "To"], []))
        }
        return out
    }

    public static func markdown(_ j: JSONValue) -> String {
        var lines = ["# Run book: \(s(j["run"]?["name"])) (\(s(j["run"]?["id"])))", ""]
        for sec in sections(j) {
            lines.append("## \(sec.title)")
            lines.append("")
            lines += sec.text
            if !sec.rows.isEmpty {
                let header = sec.header ?? Array(repeating: "", count: sec.rows[0].count)
                lines.append("| " + header.map(cell).joined(separator: " | ") + " |")
                lines.append("|" + header.map { _ in "---" }.joined(separator: "|") + "|")
                for row in sec.rows { lines.append("| " + row.map(cell).joined(separator: " | ") + " |") }
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    static func escape(_ t: String) -> String { htmlEscape(t) }

    public static func html(_ j: JSONValue) -> String {
        var h = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Run book \(escape(s(j["run"]?["id"])))</title>
            <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;background:#fff}
            @media (prefers-color-scheme: dark){body{color:#ddd;background:#111}td,th{border-color:#444}}
            table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;overflow-wrap:anywhere}</style>
            </head><body>
            <h1>Run book: \(escape(s(j["run"]?["name"]))) <small>\(escape(s(j["run"]?["id"])))</small></h1>

            """
        return h + htmlBody(j) + "</body></html>\n"
    }

    public static func htmlBody(_ j: JSONValue) -> String {
        var h = ""
        for sec in sections(j) {
            h += "<h2>\(escape(sec.title))</h2>\n"
            if !sec.text.isEmpty { h += "<ol>" + sec.text.map { "<li>\(escape(String($0.drop { $0 != " " }.dropFirst())))</li>" }.joined() + "</ol>\n" }
            if !sec.rows.isEmpty {
                h += "<table>"
                if let header = sec.header, header.contains(where: { !$0.isEmpty }) {
                    h += "<thead><tr>" + header.map { "<th scope=\"col\">\(escape($0))</th>" }.joined() + "</tr></thead>"
                }
                h += "<tbody>" + sec.rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</tbody></table>\n"
            }
        }
        return h
    }
}
