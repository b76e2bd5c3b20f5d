import Foundation
import RepriseClient
import RepriseCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `reprise run` was asked to do.
public struct RunSpec: Sendable {
    public var experimentName: String?
    public var experimentID: String?
    public var runName: String?
    public var dataPaths: [String] = []
    public var seed: UInt64?
    public var namedSeeds: [(String, UInt64)] = []
    public var purpose: String?
    public var owner: String
    public var baseline: String?
    public var tolerances: [Tolerance] = []
    public var hourlyRate: Double?
    public var command: [String]
    public var cwd: String
    public var extraTags: [KeyValue] = []
    public var sampleInterval: Double = 10
    public var allowDuplicate = false
    public var progress = true

    public init(command: [String], cwd: String, owner: String) {
        self.command = command
        self.cwd = cwd
        self.owner = owner
    }
}

/// Everything captured before the command runs.
public struct Passport: Sendable {
    public var code: CodeState?
    public var data: [DataDigest]
    public var environment: EnvironmentInfo
    public var seed: UInt64
    public var namedSeeds: [(String, UInt64)]
    public var dataDigest: String { Fingerprint.data(data) }

    public func inputsFingerprint(command: [String]) -> String {
        Fingerprint.inputs(
            commit: code?.commit ?? "", patchSHA256: code?.patchSHA256 ?? "", dataDigest: dataDigest, envDigest: environment.digest,
            command: command, seed: String(seed))
    }

    /// The data inputs as the `reprise.data.inputs` tag and `reprise/passport.json` list them.
    public func dataJSON(repoRoot: String?) -> JSONValue {
        .array(
            data.map { d in
                var o = JSONObject([
                    ("name", .string(d.name)), ("path", .string(d.path)), ("absolute_path", .string(d.absolutePath)),
                    ("digest", .string(d.root)), ("files", .int(Int64(d.files))), ("bytes", .int(d.bytes)),
                ])
                if let root = repoRoot, d.absolutePath.hasPrefix(root + "/") {
                    o["repo_path"] = .string(String(d.absolutePath.dropFirst(root.count + 1)))
                }
                return .object(o)
            })
    }
}

public struct RunOutcome: Sendable {
    public var runID: String
    public var experimentID: String
    public var exitCode: Int32
    public var status: RunStatus
}

public enum ReproError: Error, CustomStringConvertible {
    case refused(String)
    case failed(String)

    public var description: String {
        switch self {
        case .refused(let m), .failed(let m): return m
        }
    }
}

func say(_ s: String) { FileHandle.standardError.write(Data("reprise: \(s)\n".utf8)) }

func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

/// Captures a run's passport, runs its command with the tracking environment set, streams and keeps
/// its output, samples system metrics, and ends the run with the status the command earned.
public struct RunExecutor: Sendable {
    public let client: RepriseClient

    public init(client: RepriseClient) { self.client = client }

    public func capture(_ spec: RunSpec) async throws -> Passport {
        let code = CodeState.capture(cwd: spec.cwd)
        var data: [DataDigest] = []
        let progress = ProgressReporter(enabled: spec.progress)
        for path in spec.dataPaths {
            do {
                data.append(try await DataHasher.hash(path: path, workingDirectory: spec.cwd, progress: progress))
            } catch let e as DataHashError {
                throw ReproError.failed("\(e.description) Check the --data path (relative paths are taken from \(spec.cwd)).")
            }
        }
        let env = EnvironmentInfo.capture(cwd: spec.cwd, repoRoot: code?.root)
        return Passport(code: code, data: data, environment: env, seed: spec.seed ?? UInt64.random(in: 0...UInt64(UInt32.max)), namedSeeds: spec.namedSeeds)
    }

    /// The experiment's policy, or nil (none set, or a server without Reprise's extensions).
    public func policy(experimentID: String) async throws -> ExperimentPolicy? {
        try await client.experimentPolicy(experimentID: experimentID)
    }

    public func tags(_ spec: RunSpec, _ p: Passport) -> [KeyValue] {
        var t: [(String, String)] = [
            (PassportTag.version, "1"), (PassportTag.owner, spec.owner), ("mlflow.user", spec.owner),
            (PassportTag.command, JSONValue.array(spec.command.map(JSONValue.string)).jsonString),
            ("mlflow.source.name", spec.command.first ?? ""), ("mlflow.source.type", "LOCAL"),
            (PassportTag.seed, String(p.seed)),
        ]
        for (name, value) in p.namedSeeds { t.append((PassportTag.seedPrefix + name, String(value))) }
        if let c = p.code {
            t += [
                (PassportTag.repo, c.remote), (PassportTag.commit, c.commit), (PassportTag.branch, c.branch),
                (PassportTag.dirty, c.dirty ? "true" : "false"), (PassportTag.untrackedCount, String(c.untracked.count)),
                (PassportTag.workdir, c.workdir), ("mlflow.source.git.commit", c.commit), ("mlflow.source.git.branch", c.branch),
                ("mlflow.source.git.repoURL", c.remote),
            ]
            if !c.patch.isEmpty { t.append((PassportTag.patchSHA256, c.patchSHA256)) }
        }
        if !p.data.isEmpty {
            t.append((PassportTag.dataDigest, p.dataDigest))
            t.append((PassportTag.dataInputs, p.dataJSON(repoRoot: p.code?.root).jsonString))
        }
        let e = p.environment
        t += [
            (PassportTag.envDigest, e.digest), (PassportTag.envOS, e.os), (PassportTag.envKernel, e.kernel), (PassportTag.envCPU, e.cpu),
            (PassportTag.envCPUCount, String(e.cpuCount)), (PassportTag.envMemory, String(e.memoryBytes)), (PassportTag.envGPU, e.gpu),
            (PassportTag.envContainer, e.container), (PassportTag.envPython, e.python),
            (PassportTag.envLockFiles, e.locks.map(\.name).sorted().joined(separator: ",")), (PassportTag.envLockDigest, e.lockDigest),
            (PassportTag.inputsFingerprint, p.inputsFingerprint(command: spec.command)),
        ]
        if let purpose = spec.purpose, !purpose.isEmpty { t.append((PassportTag.purpose, purpose)) }
        if let b = spec.baseline, !b.isEmpty { t.append((PassportTag.baseline, b)) }
        if !spec.tolerances.isEmpty { t.append((PassportTag.tolerances, spec.tolerances.map(\.description).joined(separator: " "))) }
        if let rate = spec.hourlyRate { t.append((PassportTag.hourlyRate, String(rate))) }
        var out = t.filter { !$0.1.isEmpty }.map { KeyValue($0.0, $0.1) }
        out += spec.extraTags
        return out
    }

    /// Finished runs in the experiment with the same inputs fingerprint, oldest first.
    public func duplicates(experimentID: String, fingerprint: String) async throws -> [Run] {
        try await client.searchRuns(
            experimentIDs: [experimentID],
            filter: "tags.\"\(PassportTag.inputsFingerprint)\" = '\(fingerprint)' and attributes.status = 'FINISHED'", maxResults: 5,
            orderBy: "attributes.start_time ASC")
    }

    public func execute(_ spec: RunSpec) async throws -> RunOutcome {
        guard !spec.command.isEmpty else { throw ReproError.failed("No command given: write it after --, as in reprise run -- python train.py") }
        let experimentID: String
        if let id = spec.experimentID {
            experimentID = id
        } else {
            experimentID = try await client.experimentID(
                named: spec.experimentName ?? ProcessInfo.processInfo.environment["MLFLOW_EXPERIMENT_NAME"] ?? "Default", create: true)
        }
        let passport = try await capture(spec)
        let policy = try await policy(experimentID: experimentID)
        let fingerprint = passport.inputsFingerprint(command: spec.command)
        let dups = try await duplicates(experimentID: experimentID, fingerprint: fingerprint)
        if let dup = dups.first?.info {
            let (dupID, name) = (dup.runID, dup.runName)
            let message =
                "run \(dupID) (\(name)) already ran these exact inputs (same code, data, environment, command and seed) and finished."
            if policy?.refuseDuplicates == true && !spec.allowDuplicate {
                throw ReproError.refused(
                    "\(message) Experiment \(experimentID)'s policy refuses duplicates: reuse that run, change an input, or pass --allow-duplicate.")
            }
            if !spec.allowDuplicate { say("warning: \(message)") }
        }

        let started = nowMillis()
        let runID: String
        let artifactURI: String
        do {
            (runID, artifactURI) = try await client.createRun(
                experimentID: experimentID, runName: spec.runName, startTime: started, tags: tags(spec, passport), userID: spec.owner)
        } catch let e as RepriseError where e.message.contains(ExperimentPolicy.cleanTree) && passport.code?.dirty == true {
            // Name what is dirty: the server knows only that the tree was.
            throw ReproError.refused(e.message + " Uncommitted: " + passport.code!.changedFiles(limit: 20) + ".")
        }
        say("run \(runID) in experiment \(experimentID) (\(client.baseURL))")
        try await uploadPassport(spec, passport, runID: runID, artifactURI: artifactURI)

        if let problem = Self.commandProblem(spec.command, cwd: spec.cwd) {
            // The shell would only say `exec: pythn: not found`: say it plainly and end the run FAILED.
            say(problem)
            do {
                try await client.logBatch(runID: runID, tags: [KeyValue(PassportTag.exitStatus, "127"), KeyValue(PassportTag.failureReason, problem)])
                try await client.updateRun(runID: runID, status: .failed, endTime: nowMillis())
            } catch {
                say("warning: could not mark run \(runID) FAILED: \(error)")
            }
            say("run \(runID) FAILED: \(problem)")
            throw ExitWith(code: 127)
        }
        let result = try await spawnAndWait(spec, passport, runID: runID, experimentID: experimentID)
        let ended = nowMillis()
        let status: RunStatus = result.interrupted ? .killed : (result.exitCode == 0 ? .finished : .failed)

        try? await client.uploadArtifact(artifactURI: artifactURI, relative: "reprise/output.log", data: result.output)
        var done: [KeyValue] = [
            KeyValue(PassportTag.exitStatus, String(result.exitCode)), KeyValue(PassportTag.durationMillis, String(ended - started)),
        ]
        if let rate = spec.hourlyRate {
            done.append(KeyValue(PassportTag.cost, String(format: "%.4f", Double(ended - started) / 3_600_000 * rate)))
        }
        let run = try? await client.run(id: runID)
        let params = Dictionary((run?.params ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
        done.append(KeyValue(PassportTag.fingerprint, Fingerprint.full(inputs: fingerprint, params: params)))
        do {
            try await client.logBatch(runID: runID, tags: done)
        } catch {
            say("warning: could not record the exit status on run \(runID): \(error)")
        }
        let current = run?.info.status
        if current != status {
            do {
                try await client.updateRun(runID: runID, status: status, endTime: ended)
            } catch let e as RepriseError {
                say("the server did not accept ending run \(runID) as \(status.rawValue): \(e.message)")
                throw ExitWith(code: result.exitCode == 0 ? 1 : result.exitCode)
            }
        }
        say("run \(runID) \(status.rawValue) (exit \(result.exitCode)) after \(String(format: "%.1f", Double(ended - started) / 1000)) s")
        return RunOutcome(runID: runID, experimentID: experimentID, exitCode: result.exitCode, status: status)
    }

    func uploadPassport(_ spec: RunSpec, _ p: Passport, runID: String, artifactURI: String) async throws {
        var files: [(String, Data)] = []
        if let c = p.code {
            if !c.patch.isEmpty { files.append(("reprise/code.patch", c.patch)) }
            files.append(("reprise/untracked.txt", Data(DataHasher.manifestText(c.untracked).utf8)))
        }
        for d in p.data { files.append(("reprise/data/\(d.name).manifest.txt", Data(d.manifestText.utf8))) }
        for lock in p.environment.locks { files.append(("reprise/env/\(lock.name)", lock.content)) }
        var envJSON = JSONObject()
        for (k, v) in p.environment.json.sorted(by: { $0.key < $1.key }) { envJSON[k] = .string(v) }
        files.append(("reprise/environment.json", Data(JSONValue.object(envJSON).jsonString.utf8)))
        let passport: JSONValue = [
            "version": 1, "command": .array(spec.command.map(JSONValue.string)), "cwd": .string(spec.cwd),
            "workdir": .string(p.code?.workdir ?? ""), "seed": .string(String(p.seed)),
            "named_seeds": .object(JSONObject(p.namedSeeds.map { ($0.0, JSONValue.string(String($0.1))) })),
            "code": p.code.map { c in
                ["repo": .string(c.remote), "root": .string(c.root), "commit": .string(c.commit), "branch": .string(c.branch),
                 "dirty": .bool(c.dirty), "patch_sha256": .string(c.patch.isEmpty ? "" : c.patchSHA256),
                 "untracked": .array(c.untracked.map { ["path": .string($0.path), "size": .int($0.size), "sha256": .string($0.sha256)] })]
            } ?? .null,
            "data": p.dataJSON(repoRoot: p.code?.root), "environment": .object(envJSON),
            "tolerances": .array(spec.tolerances.map { .string($0.description) }),
        ]
        files.append(("reprise/passport.json", Data(passport.jsonString.utf8)))
        for (path, data) in files { try await client.uploadArtifact(artifactURI: artifactURI, relative: path, data: data) }
        if !p.data.isEmpty {
            let datasets: [JSONValue] = p.data.map { d in
                [
                    "tags": [["key": "mlflow.data.context", "value": "input"]],
                    "dataset": [
                        "name": .string(d.name), "digest": .string(String(d.root.prefix(32))), "source_type": "local",
                        "source": .string((["uri": .string(d.absolutePath)] as JSONValue).jsonString),
                        "profile": .string((["files": .int(Int64(d.files)), "bytes": .int(d.bytes), "sha256": .string(d.root)] as JSONValue).jsonString),
                    ],
                ]
            }
            try await client.logInputs(runID: runID, datasets: datasets)
        }
    }

    struct ChildResult {
        var exitCode: Int32
        var interrupted: Bool
        var output: Data
    }

    /// Why `command` cannot start from `cwd` (the program is not on PATH, or the path names no
    /// executable file), or nil when it can.
    static func commandProblem(_ command: [String], cwd: String) -> String? {
        guard let program = command.first, !program.isEmpty else { return "no command to run" }
        if program.contains("/") {
            let path = program.hasPrefix("/") ? program : cwd + "/" + program
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return "command not found: \(program) (no such file)" }
            if isDir.boolValue || !FileManager.default.isExecutableFile(atPath: path) { return "command not executable: \(program)" }
            return nil
        }
        return Shell.which(program) == nil ? "command not found: \(program) (not on PATH)" : nil
    }

    func spawnAndWait(_ spec: RunSpec, _ p: Passport, runID: String, experimentID: String) async throws -> ChildResult {
        var env = ProcessInfo.processInfo.environment
        env["MLFLOW_TRACKING_URI"] = client.baseURL
        env["MLFLOW_RUN_ID"] = runID
        env["MLFLOW_EXPERIMENT_ID"] = experimentID
        env.removeValue(forKey: "MLFLOW_EXPERIMENT_NAME")
        env["REPRISE_SEED"] = String(p.seed)
        env["PYTHONHASHSEED"] = String(p.seed % 4_294_967_296)
        for (name, value) in p.namedSeeds {
            env["REPRISE_SEED_" + name.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()] = String(value)
        }
        // The command's stock mlflow client authenticates as this client does: the same
        // credentials, in the variables the mlflow client reads (Basic wins over a token there too).
        switch client.credentials {
        case .basic(let username, let password)?:
            env["MLFLOW_TRACKING_USERNAME"] = username
            env["MLFLOW_TRACKING_PASSWORD"] = password
        case .bearer(let token)?:
            if env["MLFLOW_TRACKING_USERNAME"] == nil || env["MLFLOW_TRACKING_PASSWORD"] == nil { env["MLFLOW_TRACKING_TOKEN"] = token }
        case nil:
            if let actor = client.actor { env["REPRISE_ACTOR"] = actor }
        }
        let child = try ChildProcess.spawn(spec.command, cwd: spec.cwd, env: env)
        let sampler = Task { await sampleSystemMetrics(runID: runID, pid: child.pid, interval: spec.sampleInterval) }
        let (code, interrupted) = await child.wait()
        sampler.cancel()
        return ChildResult(exitCode: code, interrupted: interrupted, output: child.output())
    }

    /// Logs CPU and memory use (and GPU use where `nvidia-smi` answers) every `interval` seconds, with
    /// MLflow's system-metric names.
    func sampleSystemMetrics(runID: String, pid: pid_t, interval: Double) async {
        guard interval > 0 else { return }
        var last = SystemSample.read()
        var step: Int64 = 0
        let hasGPU = Shell.which("nvidia-smi") != nil
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            if Task.isCancelled { break }
            let now = SystemSample.read()
            let ts = nowMillis()
            var metrics: [Metric] = []
            if let a = last, let b = now, b.total > a.total {
                let busy = Double((b.total - b.idle) - (a.total - a.idle)) / Double(b.total - a.total) * 100
                metrics.append(Metric(key: "system/cpu_utilization_percentage", value: busy, timestamp: ts, step: step))
            }
            if let mem = SystemSample.memoryUsedMB() {
                metrics.append(Metric(key: "system/system_memory_usage_megabytes", value: mem, timestamp: ts, step: step))
            }
            if let rss = SystemSample.rssMB(pid: pid) {
                metrics.append(Metric(key: "system/process_memory_rss_megabytes", value: rss, timestamp: ts, step: step))
            }
            if hasGPU, let r = Shell.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]), r.ok {
                for (i, line) in r.text.split(separator: "\n").enumerated() {
                    let f = line.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                    if f.count == 2, let util = f[0], let used = f[1] {
                        metrics.append(Metric(key: "system/gpu_\(i)_utilization_percentage", value: util, timestamp: ts, step: step))
                        metrics.append(Metric(key: "system/gpu_\(i)_memory_usage_megabytes", value: used, timestamp: ts, step: step))
                    }
                }
            }
            last = now
            step += 1
            if !metrics.isEmpty { try? await client.logBatch(runID: runID, metrics: metrics) }
        }
    }
}

/// Thrown to end the command with a given exit code after the message was already printed.
public struct ExitWith: Error {
    public var code: Int32
}

enum SystemSample {
    static func read() -> (total: UInt64, idle: UInt64)? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = text.split(separator: "\n").first,
            line.hasPrefix("cpu ")
        else { return nil }
        let v = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard v.count >= 5 else { return nil }
        return (v.reduce(0, +), v[3] + v[4])
    }

    static func memoryUsedMB() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        var total: Double?
        var available: Double?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kb = Double(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { total = kb }
            if parts[0] == "MemAvailable:" { available = kb }
        }
        guard let total, let available else { return nil }
        return (total - available) / 1024
    }

    static func rssMB(pid: pid_t) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }.map { $0 / 1024 }
    }
}
