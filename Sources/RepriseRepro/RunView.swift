import Foundation
import RepriseClient
import RepriseCore

/// A run as the report commands read it: info, tags, params, metrics and artifact root.
public struct RunView: Sendable {
    public var id: String
    public var name: String
    public var experimentID: String
    public var status: String
    public var startTime: Int64
    public var endTime: Int64?
    public var artifactURI: String
    public var tags: [String: String]
    public var params: [String: String]
    public var metrics: [String: Double]

    public static func load(_ client: RepriseClient, _ id: String) async throws -> RunView {
        RunView(try await client.run(id: id))
    }

    /// The passport fields, read the way the run book reads them.
    var passport: RunbookInput {
        RunbookInput(
            runID: id, name: name, experimentID: experimentID, status: status, startTime: startTime, endTime: endTime, tags: tags,
            params: params, metrics: metrics, trackingURI: "")
    }

    public var command: [String] { passport.command }
    public var dataInputs: [JSONValue] { passport.dataInputs }
    public var seeds: [(String, String)] { passport.seeds }

    public var tolerances: [Tolerance] {
        (tags[PassportTag.tolerances] ?? "").split(separator: " ").compactMap { try? Tolerance(parsing: String($0)) }
    }

    /// Metrics a reader cares about (system samples left out).
    public var modelMetrics: [(String, Double)] { passport.modelMetrics }
}

/// `reprise diff`: what changed between two runs.
public struct RunDiff: Sendable {
    public let client: RepriseClient

    public init(client: RepriseClient) { self.client = client }

    public func diff(_ aID: String, _ bID: String) async throws -> JSONValue {
        let a = try await RunView.load(client, aID)
        let b = try await RunView.load(client, bID)
        var out = JSONObject()
        out["runs"] = [
            "a": ["id": .string(a.id), "name": .string(a.name)], "b": ["id": .string(b.id), "name": .string(b.name)],
        ]

        // Code
        var code = JSONObject()
        let ca = a.tags[PassportTag.commit] ?? a.tags["mlflow.source.git.commit"] ?? ""
        let cb = b.tags[PassportTag.commit] ?? b.tags["mlflow.source.git.commit"] ?? ""
        code["commit"] = ["a": .string(ca), "b": .string(cb), "same": .bool(ca == cb)]
        if ca != cb, !ca.isEmpty, !cb.isEmpty, let root = CodeState.capture(cwd: FileManager.default.currentDirectoryPath)?.root {
            if let log = Shell.run(["git", "log", "--oneline", "\(ca)..\(cb)"], cwd: root), log.ok {
                code["commits_between"] = .array(log.text.split(separator: "\n").map { .string(String($0)) })
            }
            if let stat = Shell.run(["git", "diff", "--stat", ca, cb], cwd: root), stat.ok {
                code["files_changed"] = .array(stat.text.split(separator: "\n").dropLast().map { .string($0.trimmingCharacters(in: .whitespaces)) })
            }
        }
        let pa = a.tags[PassportTag.patchSHA256] ?? ""
        let pb = b.tags[PassportTag.patchSHA256] ?? ""
        var patch: JSONObject = JSONObject([("a", .string(pa)), ("b", .string(pb)), ("same", .bool(pa == pb))])
        if pa != pb {
            let textA = pa.isEmpty ? "" : String(decoding: try await client.downloadArtifact(artifactURI: a.artifactURI, relative: "reprise/code.patch") ?? Data(), as: UTF8.self)
            let textB = pb.isEmpty ? "" : String(decoding: try await client.downloadArtifact(artifactURI: b.artifactURI, relative: "reprise/code.patch") ?? Data(), as: UTF8.self)
            let hunksA = Set(Self.patchHunks(textA))
            let hunksB = Set(Self.patchHunks(textB))
            patch["only_in_a"] = .array(hunksA.subtracting(hunksB).sorted().map(JSONValue.string))
            patch["only_in_b"] = .array(hunksB.subtracting(hunksA).sorted().map(JSONValue.string))
        }
        code["uncommitted_patch"] = .object(patch)
        // Untracked files (by name and content hash): a file that appeared, went or changed.
        func untracked(_ v: RunView) async throws -> [String: String] {
            guard let n = Int(v.tags[PassportTag.untrackedCount] ?? "0"), n > 0,
                let text = try await client.downloadArtifact(artifactURI: v.artifactURI, relative: "reprise/untracked.txt")
            else { return [:] }
            return Dictionary(DataHasher.parseManifest(String(decoding: text, as: UTF8.self)).map { ($0.path, $0.sha256) }, uniquingKeysWith: { x, _ in x })
        }
        let ua = try await untracked(a)
        let ub = try await untracked(b)
        code["untracked"] = [
            "a_count": .int(Int64(ua.count)), "b_count": .int(Int64(ub.count)), "same": .bool(ua == ub),
            "added": .array(Set(ub.keys).subtracting(ua.keys).sorted().map(JSONValue.string)),
            "removed": .array(Set(ua.keys).subtracting(ub.keys).sorted().map(JSONValue.string)),
            "changed": .array(Set(ua.keys).intersection(ub.keys).filter { ua[$0] != ub[$0] }.sorted().map(JSONValue.string)),
        ]
        out["code"] = .object(code)

        // Data
        var data: [JSONValue] = []
        let inA = Dictionary(a.dataInputs.compactMap { i in i["path"]?.stringValue.map { ($0, i) } }, uniquingKeysWith: { x, _ in x })
        let inB = Dictionary(b.dataInputs.compactMap { i in i["path"]?.stringValue.map { ($0, i) } }, uniquingKeysWith: { x, _ in x })
        for path in Set(inA.keys).union(inB.keys).sorted() {
            let da = inA[path]?["digest"]?.stringValue
            let db = inB[path]?["digest"]?.stringValue
            var d = JSONObject([("input", .string(path)), ("a", da.map(JSONValue.string) ?? .null), ("b", db.map(JSONValue.string) ?? .null),
                                ("same", .bool(da == db))])
            if let da, let db, da != db {
                let name = inA[path]?["name"]?.stringValue ?? (path as NSString).lastPathComponent
                let ma = try await client.downloadArtifact(artifactURI: a.artifactURI, relative: "reprise/data/\(name).manifest.txt")
                    .map { DataHasher.parseManifest(String(decoding: $0, as: UTF8.self)) } ?? []
                let mb = try await client.downloadArtifact(artifactURI: b.artifactURI, relative: "reprise/data/\(name).manifest.txt")
                    .map { DataHasher.parseManifest(String(decoding: $0, as: UTF8.self)) } ?? []
                let c = DataDigest(name: name, path: path, absolutePath: path, root: db, manifest: mb).changes(from: ma)
                d["changed"] = .array(c.changed.map(JSONValue.string))
                d["added"] = .array(c.added.map(JSONValue.string))
                d["removed"] = .array(c.removed.map(JSONValue.string))
            }
            data.append(.object(d))
        }
        out["data"] = .array(data)

        // Environment
        var env: [JSONValue] = []
        let envKeys = [PassportTag.envOS, PassportTag.envKernel, PassportTag.envCPU, PassportTag.envCPUCount, PassportTag.envMemory,
                       PassportTag.envGPU, PassportTag.envContainer, PassportTag.envPython]
        for k in envKeys where a.tags[k] != b.tags[k] {
            env.append(["field": .string(String(k.dropFirst("reprise.env.".count))), "a": .string(a.tags[k] ?? ""), "b": .string(b.tags[k] ?? "")])
        }
        var packages: [JSONValue] = []
        if a.tags[PassportTag.envLockDigest] != b.tags[PassportTag.envLockDigest] {
            let fa = try await client.downloadArtifact(artifactURI: a.artifactURI, relative: "reprise/env/pip-freeze.txt").map { String(decoding: $0, as: UTF8.self) } ?? ""
            let fb = try await client.downloadArtifact(artifactURI: b.artifactURI, relative: "reprise/env/pip-freeze.txt").map { String(decoding: $0, as: UTF8.self) } ?? ""
            packages = EnvironmentInfo.packageChanges(old: fa, new: fb).map(JSONValue.string)
        }
        out["environment"] = ["fields": .array(env), "packages": .array(packages)]

        // Params, seeds, metrics
        func changes(_ x: [String: String], _ y: [String: String]) -> JSONValue {
            var list: [JSONValue] = []
            for k in Set(x.keys).union(y.keys).sorted() where x[k] != y[k] {
                list.append(["key": .string(k), "a": x[k].map(JSONValue.string) ?? .null, "b": y[k].map(JSONValue.string) ?? .null])
            }
            return .array(list)
        }
        out["params"] = changes(a.params, b.params)
        out["seeds"] = changes(Dictionary(a.seeds, uniquingKeysWith: { x, _ in x }), Dictionary(b.seeds, uniquingKeysWith: { x, _ in x }))
        var metrics: [JSONValue] = []
        let ma = Dictionary(a.modelMetrics, uniquingKeysWith: { x, _ in x })
        let mb = Dictionary(b.modelMetrics, uniquingKeysWith: { x, _ in x })
        for k in Set(ma.keys).union(mb.keys).sorted() {
            var m = JSONObject([("key", .string(k)), ("a", ma[k].map(JSONValue.double) ?? .null), ("b", mb[k].map(JSONValue.double) ?? .null)])
            if let x = ma[k], let y = mb[k] { m["delta"] = .double(y - x) }
            metrics.append(.object(m))
        }
        out["metrics"] = .array(metrics)
        return .object(out)
    }

    /// A patch split into per-file parts (`file: +added/-removed lines`), so two patches can be compared.
    static func patchHunks(_ patch: String) -> [String] {
        var out: [String] = []
        var file = ""
        for line in patch.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("diff --git ") {
                file = String(line.split(separator: " ").last ?? "").replacingOccurrences(of: "b/", with: "", options: .anchored)
            } else if (line.hasPrefix("+") && !line.hasPrefix("+++")) || (line.hasPrefix("-") && !line.hasPrefix("---")) {
                out.append("\(file): \(line)")
            }
        }
        return out
    }

    /// The diff as text for a terminal.
    public static func text(_ d: JSONValue) -> String {
        var lines: [String] = []
        let a = d["runs"]?["a"]?["id"]?.stringValue ?? "A"
        let b = d["runs"]?["b"]?["id"]?.stringValue ?? "B"
        lines.append("diff \(a) -> \(b)")
        let commit = d["code"]?["commit"]
        if commit?["same"] == .bool(true) {
            lines.append("code: same commit \(commit?["a"]?.stringValue?.prefix(12) ?? "")")
        } else {
            lines.append("code: commit \(commit?["a"]?.stringValue?.prefix(12) ?? "(none)") -> \(commit?["b"]?.stringValue?.prefix(12) ?? "(none)")")
            if case .array(let cs)? = d["code"]?["commits_between"] { for c in cs { lines.append("  \(c.stringValue ?? "")") } }
            if case .array(let fs)? = d["code"]?["files_changed"] { for f in fs { lines.append("  \(f.stringValue ?? "")") } }
        }
        let patch = d["code"]?["uncommitted_patch"]
        if patch?["same"] == .bool(true) {
            lines.append("uncommitted changes: same\(patch?["a"]?.stringValue?.isEmpty == false ? "" : " (none)")")
        } else {
            lines.append("uncommitted changes differ:")
            if case .array(let xs)? = patch?["only_in_a"] { for x in xs { lines.append("  a only  \(x.stringValue ?? "")") } }
            if case .array(let xs)? = patch?["only_in_b"] { for x in xs { lines.append("  b only  \(x.stringValue ?? "")") } }
        }
        if let u = d["code"]?["untracked"] {
            if u["same"] == .bool(true) {
                lines.append("untracked files: same (\(u["a_count"]?.jsonString ?? "0"))")
            } else {
                lines.append("untracked files differ: \(u["a_count"]?.jsonString ?? "?") -> \(u["b_count"]?.jsonString ?? "?")")
                for (key, mark) in [("added", "+"), ("removed", "-"), ("changed", "~")] {
                    if case .array(let xs)? = u[key] { for x in xs { lines.append("  \(mark) \(x.stringValue ?? "")") } }
                }
            }
        }
        if case .array(let inputs)? = d["data"] {
            for i in inputs {
                let name = i["input"]?.stringValue ?? "?"
                if i["same"] == .bool(true) { lines.append("data \(name): same"); continue }
                lines.append("data \(name): \(i["a"]?.stringValue?.prefix(12) ?? "(absent)") -> \(i["b"]?.stringValue?.prefix(12) ?? "(absent)")")
                for (label, key) in [("changed", "changed"), ("added", "added"), ("removed", "removed")] {
                    if case .array(let xs)? = i[key], !xs.isEmpty { lines.append("  \(label): \(xs.compactMap(\.stringValue).joined(separator: ", "))") }
                }
            }
        }
        if case .array(let fs)? = d["environment"]?["fields"] {
            for f in fs { lines.append("environment \(f["field"]?.stringValue ?? ""): \(f["a"]?.stringValue ?? "") -> \(f["b"]?.stringValue ?? "")") }
        }
        if case .array(let ps)? = d["environment"]?["packages"], !ps.isEmpty {
            lines.append("packages: " + ps.compactMap(\.stringValue).joined(separator: ", "))
        }
        for (label, key) in [("param", "params"), ("seed", "seeds")] {
            if case .array(let xs)? = d[key] {
                for x in xs {
                    lines.append("\(label) \(x["key"]?.stringValue ?? ""): \(x["a"]?.stringValue ?? "(absent)") -> \(x["b"]?.stringValue ?? "(absent)")")
                }
            }
        }
        if case .array(let ms)? = d["metrics"] {
            for m in ms {
                let fa = m["a"].flatMap { if case .double(let v) = $0 { return String(v) } else { return nil } } ?? "(absent)"
                let fb = m["b"].flatMap { if case .double(let v) = $0 { return String(v) } else { return nil } } ?? "(absent)"
                var line = "metric \(m["key"]?.stringValue ?? ""): \(fa) -> \(fb)"
                if case .double(let delta)? = m["delta"] { line += String(format: " (%+.6g)", delta) }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension RunView {
    /// The view of a run as the server answered it (its latest value per metric).
    public init(_ run: Run) {
        let i = run.info
        self.init(
            id: i.runID, name: i.runName, experimentID: i.experimentID, status: i.status.rawValue, startTime: i.startTime, endTime: i.endTime,
            artifactURI: i.artifactURI, tags: Dictionary(run.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }),
            params: Dictionary(run.params.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }),
            metrics: Dictionary(run.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }))
    }
}
