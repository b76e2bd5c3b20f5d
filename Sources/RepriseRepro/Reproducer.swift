import Foundation
import RepriseClient
import RepriseCore

public struct ReproduceOptions: Sendable {
    public var runID: String
    public var tolerances: [Tolerance] = []
    public var workdir: String?
    public var allowDataDrift = false
    public var owner: String
    public var progress = true
    public var sampleInterval: Double = 10

    public init(runID: String, owner: String) {
        self.runID = runID
        self.owner = owner
    }
}

public struct ReproReport: Sendable {
    public var verdict: ReproductionVerdict
    public var summary: String
    public var lines: [String]
    public var rerunRunID: String
    public var reproductionID: String
    public var workdir: String
    /// The server's record of how it judged the rerun (`metrics`: each comparison).
    public var judgedDetails: JSONValue = [:]
}

/// Rebuilds a run from its passport in a clean checkout and judges the rerun.
public struct Reproducer: Sendable {
    public let client: RepriseClient

    public init(client: RepriseClient) { self.client = client }

    struct Stop: Error {
        var reason: String
        var details: JSONValue
    }

    public func reproduce(_ o: ReproduceOptions) async throws -> ReproReport {
        let run = try await client.run(id: o.runID)
        let tags = Dictionary(run.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
        let artifactURI = run.info.artifactURI
        let experimentID = run.info.experimentID
        let workdir = try o.workdir ?? Self.tempDir(prefix: "reprise-repro-\(o.runID.prefix(8))")
        var lines: [String] = []
        var details = JSONObject()
        details["workdir"] = .string(workdir)

        // The server judges the rerun itself (ReproductionJudge): the client names the runs and the
        // tolerances it was given, never the verdict; an attempt that made no rerun is reported
        // with its reason.
        func record(_ verdict: ReproductionVerdict, _ summary: String, rerun: String) async throws -> ReproReport {
            var body = JSONObject([("original_run_id", .string(o.runID)), ("details", .object(details))])
            if rerun.isEmpty {
                body["incomplete_reason"] = .string(summary)
            } else {
                body["rerun_run_id"] = .string(rerun)
                body["tolerances"] = .array(o.tolerances.map { .string($0.description) })
            }
            let judged = try await client.recordReproduction(.object(body))
            var report = ReproReport(
                verdict: judged.verdict, summary: judged.summary.isEmpty ? summary : judged.summary, lines: lines, rerunRunID: rerun,
                reproductionID: judged.id, workdir: workdir)
            report.judgedDetails = judged.detailsJSON
            return report
        }

        do {
            // 1. What the run recorded.
            let missing = Rebuild.missing(tags)
            let command = Rebuild.command(tags)
            let commit = Rebuild.commit(tags)
            if !missing.isEmpty {
                throw Stop(reason: "cannot try: the run does not record \(missing.joined(separator: " or "))", details: ["missing": .array(missing.map(JSONValue.string))])
            }
            let passport = try await client.downloadArtifact(artifactURI: artifactURI, relative: "reprise/passport.json")
                .flatMap { try? JSONValue.parse(Array($0)) } ?? [:]

            // 2. The code, in a clean checkout.
            let recordedRoot = passport["code"]?["root"]?.stringValue ?? ""
            let sources = [CodeState.capture(cwd: FileManager.default.currentDirectoryPath)?.root, recordedRoot, tags[PassportTag.repo]]
                .compactMap { $0 }.filter { !$0.isEmpty }
            var checkedOut = false
            var tried: [String] = []
            for src in sources where !checkedOut {
                tried.append(src)
                if FileManager.default.fileExists(atPath: src),
                    Shell.run(["git", "cat-file", "-e", "\(commit)^{commit}"], cwd: src)?.ok != true
                {
                    continue
                }
                try? FileManager.default.removeItem(atPath: workdir)
                guard Shell.run(["git", "clone", "--quiet", "--no-checkout", src, workdir])?.ok == true,
                    Shell.run(["git", "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit], cwd: workdir)?.ok == true
                else { continue }
                checkedOut = true
                lines.append("code: checked out \(commit.prefix(12)) from \(src) into \(workdir)")
            }
            guard checkedOut else {
                throw Stop(
                    reason: "cannot check out commit \(commit) (tried \(tried.isEmpty ? "no repository" : tried.joined(separator: ", "))); run reprise reproduce inside a clone that has it",
                    details: ["commit": .string(commit)])
            }
            if let sha = tags[PassportTag.patchSHA256], !sha.isEmpty {
                guard let patch = try await client.downloadArtifact(artifactURI: artifactURI, relative: "reprise/code.patch") else {
                    throw Stop(reason: "the run's uncommitted patch (reprise/code.patch) is missing from its artifacts", details: [:])
                }
                guard sha256Hex(patch) == sha else {
                    throw Stop(reason: "the stored patch does not match its recorded SHA-256 \(sha): it was altered", details: [:])
                }
                let applied = Shell.run(["git", "apply", "--binary", "--whitespace=nowarn", "-"], cwd: workdir, stdin: patch)
                guard applied?.ok == true else {
                    throw Stop(reason: "the uncommitted patch does not apply to \(commit.prefix(12)): \(applied?.stderr ?? "git missing")", details: [:])
                }
                lines.append("code: applied the uncommitted patch (\(patch.count) bytes, sha256 \(sha.prefix(12))…)")
            }
            // Untracked files are only recorded by hash; copy them from the original tree when it still has them.
            if let text = try await client.downloadArtifact(artifactURI: artifactURI, relative: "reprise/untracked.txt") {
                var unavailable: [String] = []
                for entry in DataHasher.parseManifest(String(decoding: text, as: UTF8.self)) {
                    let from = recordedRoot + "/" + entry.path
                    if !recordedRoot.isEmpty, let (_, sha) = try? DataHasher.hashFile(from), sha == entry.sha256 {
                        let to = workdir + "/" + entry.path
                        try? FileManager.default.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                        try? FileManager.default.copyItem(atPath: from, toPath: to)
                    } else {
                        unavailable.append(entry.path)
                    }
                }
                if !unavailable.isEmpty {
                    lines.append("code: untracked files not available with their recorded content: \(unavailable.joined(separator: ", "))")
                    details["untracked_unavailable"] = .array(unavailable.map(JSONValue.string))
                }
            }

            // 3. The data, byte for byte.
            var dataPaths: [String] = []
            var drift: [JSONValue] = []
            if let text = tags[PassportTag.dataInputs], case .array(let inputs)? = try? JSONValue.parse(text) {
                let progress = ProgressReporter(enabled: o.progress)
                for input in inputs {
                    guard let path = input["path"]?.stringValue, let abs = input["absolute_path"]?.stringValue,
                        let digest = input["digest"]?.stringValue
                    else { continue }
                    let name = input["name"]?.stringValue ?? (abs as NSString).lastPathComponent
                    dataPaths.append(path)
                    let now: DataDigest
                    do {
                        now = try await DataHasher.hash(path: abs, workingDirectory: "/", progress: progress)
                    } catch {
                        drift.append(["input": .string(path), "problem": .string("missing: \(error)")])
                        lines.append("data: \(path) is missing (\(abs))")
                        continue
                    }
                    if now.root == digest {
                        lines.append("data: \(path) matches (\(now.files) files, sha256 \(digest.prefix(12))…)")
                    } else {
                        let old = try await client.downloadArtifact(artifactURI: artifactURI, relative: "reprise/data/\(name).manifest.txt")
                            .map { DataHasher.parseManifest(String(decoding: $0, as: UTF8.self)) } ?? []
                        let c = now.changes(from: old)
                        func list(_ xs: [String]) -> String { xs.prefix(10).joined(separator: ", ") + (xs.count > 10 ? ", …" : "") }
                        var parts: [String] = []
                        if !c.changed.isEmpty { parts.append("changed: \(list(c.changed))") }
                        if !c.added.isEmpty { parts.append("added: \(list(c.added))") }
                        if !c.removed.isEmpty { parts.append("removed: \(list(c.removed))") }
                        lines.append("data: \(path) DRIFTED — \(parts.joined(separator: "; "))")
                        drift.append([
                            "input": .string(path), "recorded": .string(digest), "now": .string(now.root),
                            "changed": .array(c.changed.map(JSONValue.string)), "added": .array(c.added.map(JSONValue.string)),
                            "removed": .array(c.removed.map(JSONValue.string)),
                        ])
                    }
                    // Data inside the repository but not in git: make it visible at the same place in the checkout.
                    if let repoPath = input["repo_path"]?.stringValue, !FileManager.default.fileExists(atPath: workdir + "/" + repoPath) {
                        let link = workdir + "/" + repoPath
                        try? FileManager.default.createDirectory(
                            atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                        try? FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: abs)
                    }
                }
                if !drift.isEmpty {
                    details["data_drift"] = .array(drift)
                    if !o.allowDataDrift {
                        throw Stop(
                            reason: "input data changed since the run (\(drift.compactMap { $0["input"]?.stringValue }.joined(separator: ", "))); rerun with --allow-data-drift to try anyway",
                            details: [:])
                    }
                }
            }

            // 4. The environment: differences are reported, not fatal.
            let runDir = [workdir, tags[PassportTag.workdir] ?? ""].filter { !$0.isEmpty }.joined(separator: "/")
            let env = EnvironmentInfo.capture(cwd: runDir, repoRoot: workdir)
            var envDiffs: [String] = []
            for (key, tag) in [("os", PassportTag.envOS), ("kernel", PassportTag.envKernel), ("cpu", PassportTag.envCPU),
                               ("gpu", PassportTag.envGPU), ("container_image", PassportTag.envContainer), ("python", PassportTag.envPython)]
            {
                let was = tags[tag] ?? ""
                let now = env.json[key] ?? ""
                if was != now { envDiffs.append("\(key): \(was.isEmpty ? "(none)" : was) -> \(now.isEmpty ? "(none)" : now)") }
            }
            if let lock = tags[PassportTag.envLockDigest], lock != env.lockDigest {
                let oldFreeze = try await client.downloadArtifact(artifactURI: artifactURI, relative: "reprise/env/pip-freeze.txt")
                    .map { String(decoding: $0, as: UTF8.self) } ?? ""
                let newFreeze = env.locks.first { $0.name == "pip-freeze.txt" }.map { String(decoding: $0.content, as: UTF8.self) } ?? ""
                let pkgs = EnvironmentInfo.packageChanges(old: oldFreeze, new: newFreeze)
                envDiffs.append(pkgs.isEmpty ? "dependency locks differ" : "packages: \(pkgs.joined(separator: ", "))")
            }
            lines.append(envDiffs.isEmpty ? "environment: same as recorded" : "environment differs: \(envDiffs.joined(separator: "; "))")
            details["environment_differences"] = .array(envDiffs.map(JSONValue.string))

            // 5. Rerun with the same seeds.
            var spec = RunSpec(command: command, cwd: runDir, owner: o.owner)
            spec.experimentID = experimentID
            spec.runName = "reproduce-\(run.info.runName.isEmpty ? o.runID : run.info.runName)"
            spec.dataPaths = dataPaths
            spec.seed = tags[PassportTag.seed].flatMap { UInt64($0) }
            spec.namedSeeds = tags.compactMap { k, v in
                k.hasPrefix(PassportTag.seedPrefix) ? UInt64(v).map { (String(k.dropFirst(PassportTag.seedPrefix.count)), $0) } : nil
            }.sorted { $0.0 < $1.0 }
            spec.purpose = "Reproduction of run \(o.runID)"
            spec.extraTags = [KeyValue(PassportTag.reproduces, o.runID)]
            spec.allowDuplicate = true
            spec.progress = o.progress
            spec.sampleInterval = o.sampleInterval
            let declared = o.tolerances + (tags[PassportTag.tolerances] ?? "").split(separator: " ").compactMap { try? Tolerance(parsing: String($0)) }
            spec.tolerances = declared
            let outcome = try await RunExecutor(client: client).execute(spec)

            // 6. The server judges the rerun against the original and the declared tolerances; the
            //    comparison it made is shown here metric by metric.
            details["rerun_exit_status"] = .int(Int64(outcome.exitCode))
            let report = try await record(.incomplete, "", rerun: outcome.runID)
            if case .array(let compared)? = report.judgedDetails["metrics"] {
                for c in compared {
                    let name = c["metric"]?.stringValue ?? "?"
                    let got = c["actual"].flatMap { $0 == .null ? nil : $0.jsonString } ?? "missing"
                    let delta = c["delta"].flatMap { $0 == .null ? nil : $0.jsonString } ?? "n/a"
                    let ok = c["within"] == .bool(true)
                    lines.append(
                        "metric \(name): \(c["expected"]?.jsonString ?? "?") -> \(got) (delta \(delta), tolerance \(c["tolerance"]?.stringValue ?? "?")) \(ok ? "ok" : "OUTSIDE")")
                }
            }
            var final = report
            final.lines = lines
            return final
        } catch let stop as Stop {
            if case .object(let extra) = stop.details { for (k, v) in extra.members { details[k] = v } }
            lines.append("INCOMPLETE: \(stop.reason)")
            return try await record(.incomplete, stop.reason, rerun: "")
        }
    }

    static func tempDir(prefix: String) throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let path = "\(base)/\(prefix)-\(RandomID.hex().prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
