import ArgumentParser
import Crypto
import Foundation
import Logging
import RepriseArtifacts
import RepriseCore
import RepriseImport
import RepriseRepro
import RepriseSQL
import RepriseSQLite
import ReprisePostgres

/// What an export folder holds and how it is laid out: `manifest.json`; `tables/<table>.jsonl`, one
/// JSON object per row (columns in name order, rows in key order); `artifacts/…`, the store's
/// artifact folder; and `reprise-secret.key`, without which the audit chain cannot be verified nor
/// sealed webhook secrets opened. The manifest gives every file's SHA-256 and row count.
enum ExportLayout {
    static let format = "reprise-export-1"
    static let manifest = "manifest.json"
    static let keyFile = "reprise-secret.key"
    static func table(_ name: String) -> String { "tables/\(name).jsonl" }

    /// A stored value as JSON, and back: integers, doubles (shortest form that reads back the same),
    /// text and null are what the store's columns hold.
    static func json(_ v: SQLValue) -> JSONValue {
        switch v {
        case .null: return .null
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .text(let s): return .string(s)
        }
    }

    static func value(_ j: JSONValue) throws -> SQLValue {
        switch j {
        case .null: return .null
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .text(s)
        case .bool(let b): return .int(b ? 1 : 0)
        case .array, .object: throw ValidationError("An export row holds a nested value; the file is not a Reprise export.")
        }
    }

    /// A count from the manifest (0 when absent).
    static func int(_ v: JSONValue?) -> Int {
        if case .int(let n)? = v { return Int(n) }
        return 0
    }

    /// `--to x.tar` / `--from x.tar` go through a folder; the archive is made and read by `tar`.
    static func tar(_ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["tar"] + arguments
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("tar \(arguments.joined(separator: " ")) failed (exit \(p.terminationStatus)).") }
    }
}

/// Opens the store a client-side maintenance command works on, as the server opens it.
struct StoreLocation {
    var uri: String?
    var cwd = FileManager.default.currentDirectoryPath

    /// The PostgreSQL database `uri` names, if it names one.
    func postgres() throws -> PostgresLocation? {
        try uri.flatMap { PostgresLocation.isPostgres($0) ? try ServerCommand.postgresLocation($0) : nil }
    }

    /// The file the store is, or (PostgreSQL) the place beside which its key file lives: as the
    /// server decides it (./reprise-data by default).
    func dbPath() throws -> String {
        let dataDir = cwd + "/reprise-data"
        return try postgres() != nil ? dataDir + "/postgres" : uri.map { try ServerCommand.sqlitePath($0, cwd: cwd) } ?? dataDir + "/reprise.db"
    }

    func open(logger: Logger) async throws -> (ServerCommand.OpenedStore, dbPath: String) {
        let (postgres, dbPath) = (try postgres(), try dbPath())
        let opened = try await ServerCommand.openStore(
            backendStoreURI: uri, postgres: postgres, dbPath: dbPath, artifactRoot: "mlflow-artifacts:/", cwd: cwd, poolSize: 4, logger: logger)
        return (opened, dbPath)
    }

    /// The store's artifact folder: as `reprise server --artifacts-destination` names it.
    static func artifacts(_ destination: String?, cwd: String) -> String {
        ServerCommand.absolute(destination ?? cwd + "/reprise-data/artifacts", cwd: cwd)
    }
}

/// `reprise export`: a whole store as files, to restore exactly (`reprise import reprise`), to keep,
/// or to move a team from SQLite to PostgreSQL.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a whole store to a folder (or a .tar): every table as JSON Lines, the artifacts, a manifest of SHA-256s.",
        discussion: """
            The export holds every table of the store in key order (experiments, runs with every metric point, the \
            registry, governance state and the audit trail, reproduction verdicts, users and grants, webhooks), the \
            artifact folder, and the store's secret key file (0600), which the audit chain and sealed webhook secrets need: \
            keep the export as safe as the store. `reprise import reprise --from DIR --to URI` restores it exactly, \
            into a new store on SQLite or PostgreSQL. Take it while no one writes (stop the server, or use a replica's \
            quiet time): each table is read in its own snapshot.
            """)

    @Option(help: "The store to export (default: sqlite:///reprise-data/reprise.db, the server's default).")
    var backendStoreURI: String?

    @Option(help: "The store's artifact folder, as reprise server's --artifacts-destination (default: ./reprise-data/artifacts).")
    var artifactsDestination: String?

    @Option(help: "The folder to write (it must not exist yet), or a file ending in .tar.")
    var to: String

    @Flag(help: "No progress bars on standard error.")
    var quiet = false

    func run() async throws {
        var logger = Logger(label: "reprise.export")
        logger.logLevel = .warning
        let cwd = FileManager.default.currentDirectoryPath
        let fm = FileManager.default
        let target = ServerCommand.absolute(to, cwd: cwd)
        if fm.fileExists(atPath: target) { throw ValidationError("\(target) exists already. Export to a new folder or file.") }
        let asTar = target.hasSuffix(".tar")
        let dir = asTar ? target + ".partial-dir" : target
        try? fm.removeItem(atPath: dir)
        // It holds the key and the identity tables' hashes: readable by its owner only.
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        try fm.createDirectory(atPath: dir + "/tables", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])

        let (opened, dbPath) = try await StoreLocation(uri: backendStoreURI, cwd: cwd).open(logger: logger)
        let store = opened.store
        let progress = CountProgress(enabled: !quiet)
        var tables = JSONObject()
        do {
            for (table, key) in SQLTrackingStore.exportTables {
                let columns = try await store.exportColumns(table)
                let total = try await store.exportRowCount(table)
                progress.begin(table, total: total)
                let path = dir + "/" + ExportLayout.table(table)
                fm.createFile(atPath: path, contents: nil)
                guard let out = FileHandle(forWritingAtPath: path) else { throw ValidationError("Cannot write \(path).") }
                var hasher = SHA256()
                var rows = 0
                var after: [SQLValue]? = nil
                let keyPositions = key.compactMap { columns.firstIndex(of: $0) }
                guard keyPositions.count == key.count else {
                    throw ValidationError("The table \(table) lacks its key columns in this database; is the store's schema complete?")
                }
                while true {
                    let page = try await store.exportPage(table, columns: columns, after: after, offset: rows, limit: 5000)
                    if page.isEmpty { break }
                    var bytes: [UInt8] = []
                    for row in page {
                        bytes += Array(JSONValue.object(JSONObject(zip(columns, row.map(ExportLayout.json)).map { ($0, $1) })).jsonString.utf8)
                        bytes.append(UInt8(ascii: "\n"))
                    }
                    hasher.update(data: bytes)
                    try out.write(contentsOf: bytes)
                    rows += page.count
                    after = keyPositions.map { page.last![$0] }
                    progress.advance(page.count)
                }
                try out.close()
                progress.end()
                tables[table] = [
                    "file": .string(ExportLayout.table(table)), "rows": .int(Int64(rows)),
                    "sha256": .string(Hex.encode(hasher.finalize())), "columns": .array(columns.map(JSONValue.string)),
                ]
            }
        } catch {
            try? await opened.driver.shutdown()
            try? fm.removeItem(atPath: dir)
            throw error
        }
        let schema = try await store.schemaVersion()
        try await opened.driver.shutdown()

        // The artifact folder, file by file, each with its SHA-256.
        let inBucket = artifactsDestination?.hasPrefix("s3://") == true
        let artifactsRoot = StoreLocation.artifacts(inBucket ? nil : artifactsDestination, cwd: cwd)
        var artifacts: [JSONValue] = []
        if inBucket {
            print("artifacts: in \(artifactsDestination!), not copied into the export; the bucket keeps them (copy it with your storage's tools to move them)")
        } else if fm.fileExists(atPath: artifactsRoot) {
            let files = try DataHasher.listFiles(artifactsRoot)
            progress.begin("artifacts", total: files.count)
            for f in files {
                let from = artifactsRoot + "/" + f.relative
                let to = dir + "/artifacts/" + f.relative
                try fm.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try fm.copyItem(atPath: from, toPath: to)
                let (size, sha) = try DataHasher.hashFile(to)
                artifacts.append(["path": .string(f.relative), "size": .int(size), "sha256": .string(sha)])
                progress.advance(1)
            }
            progress.end()
        }
        // The key the audit chain and sealed secrets were made with.
        let keyFile = ServerCommand.keyFile(besideDatabase: dbPath)
        var keyNote = "REPRISE_SECRET_KEY (no key file beside the store): restore with the same variable set"
        if ProcessInfo.processInfo.environment["REPRISE_SECRET_KEY"]?.isEmpty ?? true, let key = fm.contents(atPath: keyFile) {
            guard fm.createFile(atPath: dir + "/" + ExportLayout.keyFile, contents: key, attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("Cannot write the key file into \(dir).")
            }
            keyNote = ExportLayout.keyFile
        }
        let manifest: JSONValue = [
            "format": .string(ExportLayout.format), "created": .int(Int64(Date().timeIntervalSince1970 * 1000)),
            "source": .string(backendStoreURI.map(PostgresLocation.redacted) ?? "sqlite:///" + dbPath), "schema_version": .int(Int64(schema)),
            "tables": .object(tables), "artifacts": .array(artifacts), "secret_key": .string(keyNote),
        ]
        try Data(manifest.jsonString.utf8).write(to: URL(fileURLWithPath: dir + "/" + ExportLayout.manifest))
        if asTar {
            fm.createFile(atPath: target, contents: nil, attributes: [.posixPermissions: 0o600])
            try ExportLayout.tar(["-cf", target, "-C", dir, "."])
            try fm.removeItem(atPath: dir)
        }
        let rows = tables.members.reduce(0) { $0 + ExportLayout.int($1.1["rows"]) }
        print("exported \(rows) rows in \(tables.members.count) tables and \(artifacts.count) artifact files to \(target)")
        print("secret key: \(keyNote)")
    }
}

/// `reprise import reprise`: restores an export exactly, into a new store.
struct RepriseImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reprise",
        abstract: "Restore a `reprise export` exactly into a new store (SQLite or PostgreSQL): ids, audit chain, governance, verdicts.",
        discussion: """
            Checks every file against the manifest's SHA-256 first, then writes the rows as they were, table by table, \
            into a store that holds nothing yet (a new SQLite file or an empty PostgreSQL database), and copies the \
            artifacts into --artifacts-destination. The export's secret key file is put beside a new SQLite store (with \
            PostgreSQL, in ./reprise-data); with REPRISE_SECRET_KEY set, it must be the exported store's. Interrupted, \
            it continues when run again. It ends by verifying the audit chain and the row counts.
            """)

    @Option(help: "The export: a folder `reprise export` wrote, or its .tar.")
    var from: String

    @Option(help: "The new store (default: sqlite:///reprise-data/reprise.db).")
    var to: String?

    @Option(help: "Where the artifacts go, as reprise server's --artifacts-destination (default: ./reprise-data/artifacts).")
    var artifactsDestination: String?

    @Flag(help: "No progress bars on standard error.")
    var quiet = false

    func run() async throws {
        var logger = Logger(label: "reprise.import")
        logger.logLevel = .warning
        let cwd = FileManager.default.currentDirectoryPath
        let fm = FileManager.default
        var dir = ServerCommand.absolute(from, cwd: cwd)
        var unpacked: String? = nil
        if dir.hasSuffix(".tar") {
            let tmp = NSTemporaryDirectory() + "reprise-restore-" + RandomID.uuid()
            try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            try ExportLayout.tar(["-xf", dir, "-C", tmp])
            unpacked = tmp
            dir = tmp
        }
        defer { if let unpacked { try? fm.removeItem(atPath: unpacked) } }
        guard let data = fm.contents(atPath: dir + "/" + ExportLayout.manifest), let manifest = try? JSONValue.parse(String(decoding: data, as: UTF8.self)),
            manifest["format"]?.stringValue == ExportLayout.format, case .object(let tables)? = manifest["tables"]
        else {
            throw ValidationError("\(dir) is not a Reprise export (no \(ExportLayout.manifest) of format \(ExportLayout.format)).")
        }
        let progress = CountProgress(enabled: !quiet)

        // Every file is checked before anything is written.
        progress.begin("checking files", total: tables.members.count)
        // Only the store's own tables, at the paths an export gives them: a manifest cannot point
        // anywhere else.
        let known = Set(SQLTrackingStore.exportTables.map(\.name))
        for (table, entry) in tables.members {
            guard known.contains(table), entry["file"]?.stringValue == ExportLayout.table(table), let sha = entry["sha256"]?.stringValue else {
                throw ValidationError("The manifest's entry '\(table)' is not one of a Reprise export. Nothing was written.")
            }
            guard (try? DataHasher.hashFile(dir + "/" + ExportLayout.table(table)).sha256) == sha else {
                throw ValidationError(
                    "\(ExportLayout.table(table)) does not match the manifest's SHA-256: the export is damaged or was changed. Nothing was written.")
            }
            progress.advance(1)
        }
        progress.end()
        // The artifacts too, read as the store reads artifacts (no links, nothing outside the folder).
        let artifacts = try manifest.wireArray("artifacts").map { a -> (path: [String], sha256: String) in
            guard let path = a["path"]?.stringValue, let sha = a["sha256"]?.stringValue,
                case let parts = Validation.pathComponents(path, omittingEmpty: false),
                parts.allSatisfy(Validation.isPlainPathComponent)
            else { throw ValidationError("The manifest lists an artifact path that is not one of an export. Nothing was written.") }
            return (parts, sha)
        }
        let exported = LocalArtifactRepository(root: dir + "/artifacts")
        let destinationRepository = LocalArtifactRepository(root: StoreLocation.artifacts(artifactsDestination, cwd: cwd))
        let copier = ArtifactCopier(origin: exported, destination: destinationRepository)
        progress.begin("checking artifacts", total: artifacts.count)
        for a in artifacts {
            guard try await copier.originDigest(a.path) == a.sha256 else {
                throw ValidationError(
                    "artifacts/\(a.path.joined(separator: "/")) does not match the manifest's SHA-256: the export is damaged or was changed. Nothing was written.")
            }
            progress.advance(1)
        }
        progress.end()

        // The key goes in place before the store is opened, so the store is made with it.
        let keyFile = ServerCommand.keyFile(besideDatabase: try StoreLocation(uri: to, cwd: cwd).dbPath())
        if let key = fm.contents(atPath: dir + "/" + ExportLayout.keyFile) {
            if let existing = fm.contents(atPath: keyFile), existing != key {
                throw ValidationError(
                    "\(keyFile) holds another store's key, and the restored store needs the export's. Restore into a folder of its own.")
            }
            try fm.createDirectory(atPath: (keyFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if !fm.fileExists(atPath: keyFile) {
                guard fm.createFile(atPath: keyFile, contents: key, attributes: [.posixPermissions: 0o600]) else {
                    throw ValidationError("Cannot write the key file \(keyFile).")
                }
            }
        }
        let (opened, _) = try await StoreLocation(uri: to, cwd: cwd).open(logger: logger)
        let store = opened.store
        do {
            let exportSchema = ExportLayout.int(manifest["schema_version"])
            if exportSchema > (try await store.schemaVersion()) {
                throw ValidationError("The export was made by a newer Reprise (schema \(exportSchema)). Restore it with that version or later.")
            }
            let marker = "restore." + (manifest["created"].map { $0.jsonString } ?? "") + "."
            let resuming = try await store.hasImportCheckpoints(prefix: marker)
            if !resuming, !(try await store.isPristine()) {
                throw ValidationError(
                    "The store \(to.map(PostgresLocation.redacted) ?? "sqlite:///reprise-data/reprise.db") holds data already; a restore writes into a new store only (a new SQLite file, or an empty PostgreSQL database).")
            }
            for (table, _) in SQLTrackingStore.exportTables {
                guard let entry = tables[table], let file = entry["file"]?.stringValue else { continue }
                let expected = ExportLayout.int(entry["rows"])
                let done = Int(try await store.importCheckpoint(marker + "rows." + table) ?? "") ?? 0
                progress.begin(table, total: expected)
                progress.advance(done)
                if SQLTrackingStore.keylessTables.contains(table), try await store.exportRowCount(table) > 0 {
                    progress.advance(expected - done)
                    progress.end()
                    continue
                }
                // Columns the store has, and nothing else: names from the manifest go into SQL.
                let columns: [String] = entry.wireArray("columns").compactMap(\.stringValue)
                let storeColumns = Set(try await store.exportColumns(table))
                guard !columns.isEmpty, Set(columns).isSubset(of: storeColumns), Set(columns).count == columns.count,
                    SQLTrackingStore.exportKey(table).allSatisfy(columns.contains)
                else {
                    throw ValidationError("The manifest's columns for \(table) are not this store's. Restore with the Reprise version that made the export.")
                }
                var batch: [[SQLValue]] = []
                var line = 0
                let keyless = SQLTrackingStore.keylessTables.contains(table)
                func flush() async throws {
                    try await store.restoreRows(
                        table, columns: columns, rows: batch, checkpoint: (marker + "rows." + table, String(line)))
                    progress.advance(batch.count)
                    batch.removeAll(keepingCapacity: true)
                }
                try await Self.forEachLine(dir + "/" + file) { text in
                    line += 1
                    if line <= done { return }
                    guard case .object(let o) = try JSONValue.parse(text) else { throw ValidationError("\(file):\(line) is not a JSON object.") }
                    batch.append(try columns.map { try ExportLayout.value(o[$0] ?? .null) })
                    if !keyless && batch.count >= 5000 { try await flush() }
                }
                if !batch.isEmpty { try await flush() }
                // Chart summaries are not exported: they are made again from the points.
                if table == "metrics" { try await store.rebuildMetricTiles() }
                try await store.restoreRows(table, columns: columns, rows: [], checkpoint: (marker + "table", table))
                progress.end()
            }
            // Artifacts, each written whole and read back against the manifest.
            var artifactProblems: [String] = []
            try await destinationRepository.prepare()
            let staging = NSTemporaryDirectory() + "reprise-restore-" + RandomID.uuid()
            progress.begin("artifacts", total: artifacts.count)
            for a in artifacts {
                let (outcome, sha) = try await copier.copyFile(a.path, staging: staging)
                if outcome == .mismatched || sha != a.sha256 { artifactProblems.append("artifact \(a.path.joined(separator: "/")): SHA-256 differs after the copy") }
                progress.advance(1)
            }
            progress.end()
            // Every row and file is in: the places are forgotten (a restore of this export into
            // this store is over), then the result is checked.
            try await store.clearImportCheckpoints(prefix: marker)
            // Verification: row counts, then the audit chain under the restored store's key.
            var problems = artifactProblems
            for (table, entry) in tables.members {
                let expected = ExportLayout.int(entry["rows"])
                let here = try await store.exportRowCount(table)
                if here != expected { problems.append("\(table): \(expected) rows exported, \(here) here") }
            }
            let audit = try await store.verifyAudit()
            if !audit.ok { problems.append("the audit chain does not verify: \(audit.json.jsonString)") }

            try await opened.driver.shutdown()
            if !problems.isEmpty {
                throw ValidationError("The restore is not exact:\n  " + problems.joined(separator: "\n  "))
            }
            print(
                "restored \(tables.members.count) tables and \(artifacts.count) artifact files from \(from) into \(to.map(PostgresLocation.redacted) ?? "sqlite:///reprise-data/reprise.db")")
            print("verified: every table's row count, the audit chain (\(audit.checked) events), every artifact's SHA-256")
        } catch {
            try? await opened.driver.shutdown()
            throw error
        }
    }

    /// Calls `body` with each line of a file, read in blocks (a table's file can be gigabytes).
    static func forEachLine(_ path: String, _ body: (String) async throws -> Void) async throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("Cannot read \(path).") }
        defer { try? handle.close() }
        var pending: [UInt8] = []
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            pending += chunk
            var start = 0
            while let nl = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                try await body(String(decoding: pending[start..<nl], as: UTF8.self))
                start = nl + 1
            }
            pending.removeSubrange(0..<start)
        }
        if !pending.isEmpty { try await body(String(decoding: pending, as: UTF8.self)) }
    }
}
