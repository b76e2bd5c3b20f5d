import ArgumentParser
import Foundation
import RepriseClient
import RepriseCore
import RepriseRepro

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command as a tracked run with its full passport: code, data, environment, seeds and context.",
        discussion: """
            Creates the run, records the git commit, the uncommitted patch and untracked files, a content hash of every \
            --data input, the environment and dependency locks, then runs the command with MLFLOW_TRACKING_URI, \
            MLFLOW_RUN_ID and REPRISE_SEED set, so a script using the stock mlflow client logs into this same run. \
            Output is streamed and kept as the artifact reprise/output.log; CPU, memory (and GPU) use are sampled as \
            system/* metrics. The run ends FINISHED, FAILED (non-zero exit) or KILLED (interrupted; the signal is \
            forwarded to the command). reprise exits with the command's exit status.

            Example: reprise run --experiment churn --data data/train.csv --seed 42 --purpose "baseline" -- python train.py
            """)

    @OptionGroup var server: ClientOptions

    @Option(name: .long, help: "Experiment name (created when missing; default: $MLFLOW_EXPERIMENT_NAME, else Default).")
    var experiment: String?

    @Option(name: .long, help: "Run name (default: a generated one).")
    var runName: String?

    @Option(name: .long, help: "A data input (file or folder) to hash and record; repeat for several.")
    var data: [String] = []

    @Option(name: .long, help: "The root seed, passed as REPRISE_SEED (and PYTHONHASHSEED). Default: a random one, recorded.")
    var seed: UInt64?

    @Option(name: .long, help: "A named seed NAME=N, passed as REPRISE_SEED_<NAME>; repeat for several.")
    var namedSeed: [String] = []

    @Option(name: .long, help: "Why this run exists.")
    var purpose: String?

    @Option(name: .long, help: "Who owns the run (default: the authenticated user, else the actor).")
    var owner: String?

    func ownerName() async -> String {
        if let owner { return owner }
        return await server.ownerName()
    }

    @Option(name: .long, help: "A run id to compare this run with.")
    var baseline: String?

    @Option(name: .long, help: "A metric tolerance a reproduction must meet, e.g. accuracy=abs:0.01 or loss=rel:0.5%; repeat for several.")
    var tolerance: [String] = []

    @Option(name: .long, help: "Hardware cost per hour; the run's cost is recorded as duration × rate.")
    var hourlyRate: Double?

    @Option(name: .long, help: "Seconds between system-metric samples (0 turns sampling off).")
    var sampleInterval: Double = 10

    @Flag(name: .long, help: "Run even when a finished run already has the same inputs fingerprint.")
    var allowDuplicate = false

    @Argument(parsing: .postTerminator, help: "The command to run, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("Give the command to run after --, for example: reprise run -- python train.py") }
        for t in tolerance { _ = try parseTolerance(t) }
        for s in namedSeed { _ = try parseNamedSeed(s) }
    }

    func parseTolerance(_ t: String) throws -> Tolerance {
        do { return try Tolerance(parsing: t) } catch let e as RepriseError { throw ValidationError(e.message) }
    }

    func parseNamedSeed(_ s: String) throws -> (String, UInt64) {
        let parts = s.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, let v = UInt64(parts[1]) else {
            throw ValidationError("Invalid --named-seed '\(s)': write NAME=N, for example --named-seed shuffle=7.")
        }
        return (parts[0], v)
    }

    func run() async throws {
        var spec = RunSpec(command: command, cwd: FileManager.default.currentDirectoryPath, owner: await ownerName())
        spec.experimentName = experiment
        spec.runName = runName
        spec.dataPaths = data
        spec.seed = seed
        spec.namedSeeds = try namedSeed.map(parseNamedSeed)
        spec.purpose = purpose
        spec.baseline = baseline
        spec.tolerances = try tolerance.map(parseTolerance)
        spec.hourlyRate = hourlyRate
        spec.sampleInterval = sampleInterval
        spec.allowDuplicate = allowDuplicate
        let outcome = try await runRepro { try await RunExecutor(client: server.client).execute(spec) }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}

/// Like `runClient`, plus the reproducibility errors.
func runRepro<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await runClient(body)
    } catch let e as ReproError {
        FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
        throw ExitCode.failure
    } catch let e as ExitWith {
        throw ExitCode(e.code)
    }
}

struct ReproduceCommand: AsyncParsableCommand {
    /// The exit status of a reproduction that failed before any verdict (0–2 are verdicts).
    static let errorExit: Int32 = 3

    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Rebuild a run from its passport in a clean checkout and judge the rerun: REPRODUCED, DIVERGED or INCOMPLETE.",
        discussion: """
            Checks out the recorded commit into a clean folder, applies the recorded patch, verifies every data input \
            byte for byte (a change stops here with a report, unless --allow-data-drift), reports environment \
            differences, reruns the recorded command with the recorded seeds, and compares each declared metric \
            within its tolerance (declared here or at `reprise run --tolerance`; without any, every metric must match \
            exactly). The verdict is stored on the original run (and on the rerun, when there is one). The \
            checkout is removed afterwards unless --keep-workdir or --workdir is given.

            Exit status: 0 REPRODUCED, 1 DIVERGED, 2 INCOMPLETE (no rerun could be judged: the run lacks \
            what a rebuild needs, the code or data could not be restored), 3 error (the run or server could \
            not be reached, the request was refused).
            """)

    @OptionGroup var server: ClientOptions

    @Argument(help: "The run to reproduce.")
    var runID: String

    @Option(name: .long, help: "metric=abs:X or metric=rel:Y% ; repeat for several. Overrides the run's recorded tolerance for that metric.")
    var tolerance: [String] = []

    @Option(name: .long, help: "Where to check the code out (default: a new temporary folder, removed afterwards). Kept.")
    var workdir: String?

    @Flag(name: .long, help: "Keep the temporary checkout and say where it is.")
    var keepWorkdir = false

    @Flag(name: .long, help: "Rerun even if the input data changed since the run (the verdict notes the drift).")
    var allowDataDrift = false

    @Option(name: .long, help: "Seconds between system-metric samples of the rerun (0 turns sampling off).")
    var sampleInterval: Double = 10

    func run() async throws {
        var o = ReproduceOptions(runID: runID, owner: await server.ownerName())
        o.tolerances = try tolerance.map { t in
            do { return try Tolerance(parsing: t) } catch let e as RepriseError { throw ValidationError(e.message) }
        }
        o.workdir = workdir.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
        o.allowDataDrift = allowDataDrift
        o.sampleInterval = sampleInterval
        let report: ReproReport
        do {
            report = try await runRepro { try await Reproducer(client: server.client).reproduce(o) }
        } catch let e as ExitCode where e == .failure {
            throw ExitCode(Self.errorExit)  // an error, told apart from DIVERGED
        }
        print("Reproduction of run \(runID)")
        for line in report.lines { print("  " + line) }
        print("verdict: \(report.verdict.rawValue): \(report.summary)")
        if report.rerunRunID.isEmpty {
            print("recorded as reproduction \(report.reproductionID) on run \(runID) (no rerun was made)")
        } else {
            print("rerun: \(report.rerunRunID)")
            print("recorded as reproduction \(report.reproductionID) on runs \(runID) and \(report.rerunRunID)")
        }
        if workdir == nil && !keepWorkdir {
            try? FileManager.default.removeItem(atPath: report.workdir)
        } else if FileManager.default.fileExists(atPath: report.workdir) {
            print("checkout kept at \(report.workdir)")
        }
        switch report.verdict {
        case .reproduced: return
        case .diverged: throw ExitCode(1)
        case .incomplete: throw ExitCode(2)
        }
    }
}

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "What an experiment requires of its runs.",
        subcommands: [Set.self, Show.self, Delete.self])

    static func experimentID(_ client: RepriseClient, _ nameOrID: String) async throws -> String {
        if Int64(nameOrID) != nil { return nameOrID }
        return try await client.experimentID(named: nameOrID, create: false)
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the policy: required passport fields and strict (refuse) or soft (flag) mode.",
            discussion: "Fields: \(PassportField.allCases.map(\.rawValue).joined(separator: ", ")). Example: reprise policy set churn --require code,data,environment,seed --mode strict")
        @OptionGroup var server: ClientOptions
        @Argument(help: "Experiment name or id.") var experiment: String
        @Option(name: .long, help: "Comma-separated passport fields every run must carry.") var require: String = ""
        @Option(name: .long, help: "strict or soft.") var mode: String = "soft"
        @Flag(name: .long, help: "Also refuse (strict) or flag (soft) runs from a dirty working tree.") var refuseDirty = false
        @Flag(name: .long, help: "Make reprise run refuse, not only warn about, duplicate runs.") var refuseDuplicates = false

        func run() async throws {
            try await runClient {
                let client = server.client
                let id = try await PolicyCommand.experimentID(client, experiment)
                let fields = require.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                let r = try await client.call(
                    .PUT, "/api/reprise/v1/experiments/\(id)/policy",
                    body: ["mode": .string(mode), "required": .array(fields.map(JSONValue.string)), "refuse_dirty": .bool(refuseDirty),
                           "refuse_duplicates": .bool(refuseDuplicates)])
                printJSON(r["policy"] ?? r)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the experiment's policy.", aliases: ["get"])
        @OptionGroup var server: ClientOptions
        @Argument(help: "Experiment name or id.") var experiment: String
        func run() async throws {
            try await runClient {
                let id = try await PolicyCommand.experimentID(server.client, experiment)
                guard let policy = try await server.client.experimentPolicy(experimentID: id) else {
                    throw CLIError("Experiment \(experiment) has no policy. Set one: reprise policy set \(experiment) --require code,data --mode strict")
                }
                printJSON(policy.json)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the experiment's policy.")
        @OptionGroup var server: ClientOptions
        @Argument(help: "Experiment name or id.") var experiment: String
        func run() async throws {
            try await runClient {
                let id = try await PolicyCommand.experimentID(server.client, experiment)
                try await server.client.call(.DELETE, "/api/reprise/v1/experiments/\(id)/policy")
                print("policy of experiment \(id) removed")
            }
        }
    }
}
