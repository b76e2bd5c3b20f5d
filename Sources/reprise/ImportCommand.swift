import ArgumentParser
import Foundation
import Logging
import RepriseArtifacts
import RepriseClient
import RepriseCore
import RepriseImport
import RepriseSQL
import RepriseSQLite
import ReprisePostgres

/// `reprise import`: bring another store's history into a Reprise store.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Bring an existing store into Reprise, ids unchanged.",
        subcommands: [MLflowImportCommand.self, RepriseImportCommand.self])
}

/// `reprise import mlflow`: an MLflow tracking database (and its artifacts) into a Reprise store.
struct MLflowImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlflow",
        abstract: "Import an MLflow tracking store: experiments, runs (every metric point), logged models, the registry, webhooks.",
        discussion: """
            Reads MLflow's database directly (read-only; MLflow 2.x to 3.17 schemas), or, when only the server can be \
            reached, its REST API (slower: each metric history is a request), and writes into the Reprise store \
            --to names (default: the server's, sqlite:///reprise-data/reprise.db), keeping every id, so runs:/<id>/… and \
            models:/name@alias keep resolving. Safe to interrupt (Ctrl-C) and to run again: it continues where it stopped, \
            and a later run brings only what MLflow gained since. It ends with a verification report: counts on both sides, \
            metric histories compared point by point, artifact checksums. Each imported entity gets an audit event by the \
            actor `import`; runs get reprise.import.* tags, with the passport fields MLflow could not record listed as missing.

            Artifacts: an MLflow server that proxied them (--artifacts-destination DIR, ./mlartifacts by default) keeps \
            them under DIR; give it as --artifacts DIR. --artifacts-mode copy (the default) copies them into Reprise's \
            artifact folder (--artifacts-destination) and checks each file's SHA-256; reference leaves them where they are \
            (start reprise server --artifacts-destination DIR to serve them from there).
            """)

    @Option(
        help: "The MLflow store: its database (sqlite:///path/to/mlflow.db, postgresql://user:password@host:port/database), or a running MLflow server (http(s)://host:port; credentials from MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN).")
    var from: String

    @Option(help: "The Reprise store to import into (default: sqlite:///reprise-data/reprise.db, the server's default).")
    var to: String?

    @Option(help: "Where the MLflow server kept proxied artifacts (its --artifacts-destination): a folder or s3://bucket/prefix. From a server (--from http…) without it, they are read through the server.")
    var artifacts: String?

    @Option(help: "copy: copy the artifacts into Reprise's folder and verify them; reference: leave them where they are.")
    var artifactsMode: String = "copy"

    @Option(help: "Reprise's artifact store, as reprise server's --artifacts-destination: a folder (default: ./reprise-data/artifacts) or s3://bucket/prefix.")
    var artifactsDestination: String?

    @Option(help: "Runs per transaction.")
    var batchSize: Int = 200

    @Flag(help: "No progress bars on standard error.")
    var quiet = false

    func validate() throws {
        guard ["copy", "reference"].contains(artifactsMode) else {
            throw ValidationError("--artifacts-mode must be copy or reference, got '\(artifactsMode)'.")
        }
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 10000.") }
    }

    func run() async throws {
        var logger = Logger(label: "reprise.import")
        logger.logLevel = .warning
        let cwd = FileManager.default.currentDirectoryPath

        // The source, read-only.
        let source: any ImportSource
        let display: String
        do {
            if from.hasPrefix("http://") || from.hasPrefix("https://") {
                // Credentials in the URL are used, never recorded (tags, audit events, the report).
                display = Self.withoutUserInfo(from)
                // user:password in the URL is HTTP Basic, as the mlflow client reads it; else the environment's.
                var credentials = Credentials.fromEnvironment(ProcessInfo.processInfo.environment)?.credentials
                if let info = Self.userInfo(from), let colon = info.firstIndex(of: ":") {
                    credentials = .basic(
                        username: String(info[..<colon]).removingPercentEncoding ?? String(info[..<colon]),
                        password: String(info[info.index(after: colon)...]).removingPercentEncoding ?? String(info[info.index(after: colon)...]))
                }
                source = try await MLflowServerSource.open(client: RepriseClient(baseURL: display, credentials: credentials), displayName: display)
            } else {
                let sourceDriver: any SQLDriver
                if PostgresLocation.isPostgres(from) {
                    let location = try ServerCommand.postgresLocation(from)
                    sourceDriver = try PostgresDriver(location: location, maxConnections: 4, logger: logger)
                    display = PostgresLocation.redacted(from)
                } else {
                    let path = try ServerCommand.sqlitePath(from, cwd: cwd)
                    guard FileManager.default.fileExists(atPath: path) else {
                        throw ValidationError(
                            "No database at \(path). Give the file mlflow server --backend-store-uri names: --from sqlite:///path/to/mlflow.db.")
                    }
                    sourceDriver = try SQLiteReadOnlyDriver(path: path)
                    display = "sqlite:///" + path
                }
                do {
                    source = try await MLflowDatabaseSource.open(driver: sourceDriver, displayName: display)
                } catch {
                    try? await sourceDriver.shutdown()
                    throw error
                }
            }
        } catch let e as RepriseError {
            throw ValidationError(e.message)
        } catch let e as RepriseClientError {
            throw ValidationError("Cannot read \(Self.withoutUserInfo(from)): \(e)")
        }

        // The target, as the server opens it.
        let dataDir = cwd + "/reprise-data"
        let target = StoreLocation(uri: to, cwd: cwd)
        if try target.postgres() == nil, "sqlite:///" + (try target.dbPath()) == display {
            throw ValidationError("--to names the MLflow database itself. Import into a Reprise store of its own, for example --to sqlite:///reprise.db.")
        }
        let destination = artifactsDestination.flatMap { $0.hasPrefix("s3://") ? $0 : nil }
            ?? ServerCommand.absolute(artifactsDestination ?? dataDir + "/artifacts", cwd: cwd)
        let (opened, _) = try await target.open(logger: logger)

        var importer = Importer(
            store: opened.store, source: source,
            provenance: ImportProvenance(source: display, kind: source.kind, time: Int64(Date().timeIntervalSince1970 * 1000)))
        importer.batchRuns = batchSize
        // Artifacts: from MLflow's folder or bucket (--artifacts), else through the server when
        // importing from one; into Reprise's folder or bucket (--artifacts-destination).
        var buckets: [S3ArtifactRepository] = []
        func repository(_ location: String) throws -> any ArtifactRepository {
            guard location.hasPrefix("s3://") else { return LocalArtifactRepository(root: ServerCommand.absolute(location, cwd: cwd)) }
            do {
                let bucket = S3ArtifactRepository(location: try S3Location(uri: location), settings: try S3Settings.fromEnvironment())
                buckets.append(bucket)
                return bucket
            } catch let e as RepriseError {
                throw ValidationError("\(location): \(e.message)")
            }
        }
        if artifactsMode == "copy" {
            var origin: (any ArtifactRepository)? = nil
            if let artifacts {
                if !artifacts.hasPrefix("s3://") {
                    let root = ServerCommand.absolute(artifacts, cwd: cwd)
                    var isDirectory: ObjCBool = false
                    guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
                        throw ValidationError(
                            "--artifacts \(root) is not a folder. Give the folder mlflow server stored artifacts in (its --artifacts-destination).")
                    }
                }
                origin = try repository(artifacts)
            } else if let server = source as? MLflowServerSource {
                origin = ProxiedArtifactRepository(client: server.client)
            }
            if let origin {
                let target = try repository(destination)
                if let local = target as? LocalArtifactRepository { try await local.prepare() }
                importer.artifacts = ArtifactCopier(origin: origin, destination: target)
            }
        }
        let openBuckets = buckets
        @Sendable func close() async {
            try? await source.close()
            try? await opened.driver.shutdown()
            for b in openBuckets { try? await b.shutdown() }
        }

        // Ctrl-C stops after the batch being written commits.
        let work = Task {
            try await WriteContext.$current.withValue(
                WriteContext(actor: "import", authenticated: false, requestID: "import-" + RandomID.uuid())
            ) {
                try await importer.run(progress: CountProgress(enabled: !quiet))
            }
        }
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        interrupt.setEventHandler {
            FileHandle.standardError.write(Data("\ninterrupted: finishing the batch being written…\n".utf8))
            work.cancel()
        }
        interrupt.resume()
        let report: ImportReport
        do {
            report = try await work.value
        } catch let e as ImportInterrupted {
            await close()
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
            throw ExitCode(130)
        } catch let e as RepriseError {
            await close()
            throw ValidationError(e.message)
        } catch {
            await close()
            throw error
        }
        interrupt.cancel()
        await close()
        print(Self.render(report, artifactsMode: artifactsMode, artifacts: artifacts, destination: destination, to: to))
        if !report.verified { throw ExitCode(2) }
    }

    /// The `user:secret` of `http://user:secret@host/…`, if any.
    static func userInfo(_ url: String) -> String? {
        guard let schemeEnd = url.range(of: "://")?.upperBound else { return nil }
        let authorityEnd = url[schemeEnd...].firstIndex(of: "/") ?? url.endIndex
        guard let at = url[schemeEnd..<authorityEnd].lastIndex(of: "@") else { return nil }
        return String(url[schemeEnd..<at])
    }

    /// `http://user:secret@host/…` as `http://host/…`.
    static func withoutUserInfo(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://")?.upperBound else { return url }
        let authorityEnd = url[schemeEnd...].firstIndex(of: "/") ?? url.endIndex
        guard let at = url[schemeEnd..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(url[..<schemeEnd]) + String(url[url.index(after: at)...])
    }

    static func render(_ r: ImportReport, artifactsMode: String, artifacts: String?, destination: String, to: String?) -> String {
        var lines = ["Imported \(r.source) in \(String(format: "%.1f", r.seconds)) s"]
        lines += r.facts.map { "  \($0)" }
        lines.append("")
        lines.append("  " + "entity".padding(toLength: 20, withPad: " ", startingAt: 0) + "   added  already here")
        for e in ImportEntity.allCases where r.tally.added[e] != nil || r.tally.present[e] != nil {
            lines.append(
                "  " + e.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%8d  %12d", r.tally.added[e] ?? 0, r.tally.present[e] ?? 0))
        }
        lines.append("")
        lines.append("Verification: \(r.verified ? "passed" : "FAILED")")
        lines.append("  " + "entity".padding(toLength: 20, withPad: " ", startingAt: 0) + "    MLflow    Reprise")
        for c in r.checks {
            lines.append(
                "  " + c.entity.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%10d %10d", c.source, c.here)
                    + (c.ok ? "" : "   MISMATCH (entities already here are not updated by an import)"))
        }
        let identical = r.histories.filter(\.identical).count
        let points = r.histories.reduce(0) { $0 + $1.points }
        lines.append("  metric histories compared point by point: \(identical) of \(r.histories.count) identical (\(points) points)")
        for h in r.histories where !h.identical { lines.append("    DIFFERS: run \(h.runID) metric \(h.key)") }
        if let a = r.artifacts {
            lines.append(
                "  artifacts: \(a.files) files, \(a.bytes) bytes copied to \(destination) (\(a.unchanged) already there), SHA-256 \(a.mismatched.isEmpty ? "identical" : "DIFFERS for \(a.mismatched.count)")")
            for m in a.mismatched.prefix(20) { lines.append("    DIFFERS: \(m)") }
            for e in a.referenced { lines.append("    not copied (not under the artifacts folder): \(e)") }
        } else if artifactsMode == "reference" {
            lines.append("  artifacts: left where they are; start reprise server --artifacts-destination \(artifacts ?? "<MLflow's artifact folder>") to serve them")
        } else {
            lines.append("  artifacts: not copied (no --artifacts folder given); run again with --artifacts DIR to copy them")
        }
        for n in r.notes { lines.append("Note: \(n)") }
        for n in r.notImported { lines.append("Not imported: \(n)") }
        lines.append("")
        lines.append("Start Reprise on it: reprise server --backend-store-uri \(to.map(PostgresLocation.redacted) ?? "sqlite:///reprise-data/reprise.db")")
        return lines.joined(separator: "\n")
    }
}

/// Progress bars with counts, rate and time left, on standard error: redrawn in place on a
/// terminal, one line per phase otherwise.
final class CountProgress: ImportProgress, @unchecked Sendable {
    private let lock = NSLock()
    private let enabled: Bool
    private let tty = isatty(2) == 1
    private var phase = ""
    private var total = 0
    private var done = 0
    private var started = Date()
    private var lastDraw = Date.distantPast

    init(enabled: Bool) { self.enabled = enabled }

    func begin(_ phase: String, total: Int) {
        lock.withLock {
            self.phase = phase
            self.total = total
            done = 0
            started = Date()
            lastDraw = .distantPast
        }
    }

    func advance(_ n: Int) {
        lock.withLock {
            done += n
            guard enabled, tty, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = Date()
            let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
            let filled = Int(fraction * 24)
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: 24 - filled)
            let elapsed = Date().timeIntervalSince(started)
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            let eta = rate > 0 && total > done ? String(format: "  ETA %.0f s", Double(total - done) / rate) : ""
            write("\r\u{1B}[K\(phase) [\(bar)] \(done)/\(total)  \(Int(rate))/s\(eta)")
        }
    }

    func end() {
        lock.withLock {
            guard enabled else { return }
            let elapsed = max(Date().timeIntervalSince(started), 0.001)
            write((tty ? "\r\u{1B}[K" : "") + "\(phase): \(done) of \(total) in \(String(format: "%.1f", elapsed)) s\n")
        }
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
