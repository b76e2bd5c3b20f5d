import ArgumentParser
import Foundation
import Logging
import RepriseClient
import RepriseCore
import RepriseSQL
import RepriseSQLite
import ReprisePostgres

/// `reprise audit …`: check and export the tamper-evident audit trail.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check and export the audit trail (a hash chain over every change, keyed with the server secret).",
        subcommands: [Verify.self, Export.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the chain and the signed checkpoints; name the first tampered, missing or cut event.",
            discussion: """
                With --backend-store-uri the database (a SQLite file, or PostgreSQL) is read directly, so the
                check does not trust a running server. Exits 1 when the chain is broken.
                """)
        @OptionGroup var options: ClientOptions
        @Option(help: "Verify this database directly (sqlite:///path.db or postgresql://…) instead of asking the server. Needs the server secret: REPRISE_SECRET_KEY (or, for SQLite, the key file beside the database).")
        var backendStoreURI: String?
        @Option(
            help: "Also compare the chain with the signed checkpoints in this file (an earlier `reprise audit export`, kept elsewhere), to detect events cut from the end or a recomputed chain.")
        var checkpoints: String?
        @Flag(help: "Print JSON.") var json = false

        /// Signed checkpoints from a file: JSON lines, each a checkpoint or an export's `{"checkpoint": …}` line.
        static func readCheckpoints(_ file: String) throws -> [AuditCheckpoint] {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("Cannot read \(file).") }
            let found = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line -> AuditCheckpoint? in
                guard line.contains("\"signature\"") else { return nil }
                return AuditCheckpoint(json: try? JSONValue.parse(String(line)))
            }
            if found.isEmpty { throw ValidationError("\(file) holds no signed checkpoint (an audit export ends with one).") }
            return found
        }

        func run() async throws {
            let result: JSONValue
            let given = try checkpoints.map(Self.readCheckpoints) ?? []
            if let uri = backendStoreURI, PostgresLocation.isPostgres(uri) {
                // Offline, against the database itself: the key must be the servers' shared one.
                guard let key = ProcessInfo.processInfo.environment["REPRISE_SECRET_KEY"], !key.isEmpty else {
                    throw ValidationError("The audit chain is keyed with the servers' secret: set REPRISE_SECRET_KEY to the value the servers use.")
                }
                let driver = try PostgresDriver(location: try ServerCommand.postgresLocation(uri), maxConnections: 2, logger: Logger(label: "reprise-audit"))
                let store = SQLTrackingStore(
                    driver: driver, artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: "/"),
                    auditKey: AuditKey(keyMaterial: Array(key.utf8), checkpointFile: FileManager.default.currentDirectoryPath + "/reprise-data/postgres.audit-head"))
                do {
                    result = try await store.verifyAudit(checkpoints: given).json
                } catch {
                    try? await driver.shutdown()
                    throw ValidationError("Cannot read the audit trail from \(PostgresLocation.redacted(uri)): \(error)")
                }
                try await driver.shutdown()
            } else if let uri = backendStoreURI {
                let path = try ServerCommand.sqlitePath(uri, cwd: FileManager.default.currentDirectoryPath)
                guard FileManager.default.fileExists(atPath: path) else {
                    throw ValidationError("No database at \(path).")
                }
                let keyFile = ServerCommand.keyFile(besideDatabase: path)
                let material: [UInt8]
                if let key = ProcessInfo.processInfo.environment["REPRISE_SECRET_KEY"], !key.isEmpty {
                    material = Array(key.utf8)
                } else if let data = FileManager.default.contents(atPath: keyFile), !data.isEmpty {
                    material = Array(data)
                } else {
                    throw ValidationError("The audit chain is keyed with the server secret: set REPRISE_SECRET_KEY or put the key file at \(keyFile).")
                }
                let driver = try SQLiteDriver(path: path)
                let store = SQLTrackingStore(
                    driver: driver, artifacts: ArtifactRootPolicy(defaultRoot: "mlflow-artifacts:/", workingDirectory: "/"),
                    auditKey: AuditKey(keyMaterial: material, checkpointFile: path + ".audit-head"))
                result = try await store.verifyAudit(checkpoints: given).json
                try await driver.shutdown()
            } else if given.isEmpty {
                result = try await runClient { try await options.client.call(.GET, "/api/reprise/v1/audit/verify") }
            } else {
                let body: JSONValue = ["checkpoints": .array(given.map(\.json))]
                result = try await runClient { try await options.client.call(.POST, "/api/reprise/v1/audit/verify", body: body) }
            }
            if json {
                printJSON(result)
            } else if result["ok"] == .bool(true) {
                print("Audit trail intact: \(result["checked"]?.jsonString ?? "0") events chain correctly.")
                if let head = result["head_hash"]?.stringValue, !head.isEmpty {
                    print("Head: event \(result["head_seq"]?.jsonString ?? "?") \(head)")
                }
                print("Compared with \(result["checkpoints_checked"]?.jsonString ?? "0") signed checkpoints.")
                func count(_ key: String) -> Int64 {
                    if case .int(let n)? = result[key] { return n }
                    return 0
                }
                let authenticated = count("authenticated_events")
                let checked = count("checked")
                var methods: [String] = []
                if case .object(let m)? = result["authenticated_by_method"] {
                    methods = m.members.map { "\($0.0) \($0.1.jsonString)" }
                }
                print(
                    "Authenticated: \(authenticated) of \(checked) events were written by a logged-in caller\(methods.isEmpty ? "" : " (" + methods.joined(separator: ", ") + ")"); "
                        + "the other \(checked - authenticated) name a claimed actor or the system (written with authentication off, or by the server itself).")
            } else {
                print("AUDIT TRAIL BROKEN at event \(result["first_bad_seq"]?.jsonString ?? "?"): \(result["problem"]?.stringValue ?? "")")
                print("\(result["checked"]?.jsonString ?? "0") events before it chain correctly.")
            }
            if result["ok"] != .bool(true) { throw ExitCode.failure }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write audit events as JSON Lines, ending with a signed checkpoint of the head (keep it elsewhere).")
        @OptionGroup var options: ClientOptions
        @Option(name: .shortAndLong, help: "File to write (default: standard output).") var output: String?
        @Option(help: "Only this entity type (run, experiment, registered_model, model_version, alias, approval_request, …).")
        var entityType: String?
        @Option(help: "Only this entity (a model name also covers its versions and aliases).") var entityID: String?

        func run() async throws {
            var handle = FileHandle.standardOutput
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil) , let h = FileHandle(forWritingAtPath: output) else {
                    throw ValidationError("Cannot write \(output).")
                }
                handle = h
            }
            var after: Int64 = 0
            var count = 0
            while true {
                var query: [(String, String)] = [("after_seq", String(after)), ("limit", "5000")]
                if let entityType { query.append(("entity_type", entityType)) }
                if let entityID { query.append(("entity_id", entityID)) }
                let r = try await runClient { try await options.client.call(.GET, "/api/reprise/v1/audit/events", query: query) }
                guard case .array(let events)? = r["events"], !events.isEmpty else { break }
                var chunk = ""
                for e in events { chunk += e.jsonString + "\n" }
                handle.write(Data(chunk.utf8))
                count += events.count
                if output != nil { FileHandle.standardError.write(Data("\rexported \(count) events".utf8)) }
                guard case .int(let next)? = r["next_after_seq"] else { break }
                after = next
            }
            // The last line: a signed checkpoint of the head, so the export itself can later show
            // that events were cut from the end (`reprise audit verify --checkpoints FILE`).
            let head = try await runClient { try await options.client.call(.GET, "/api/reprise/v1/audit/checkpoint") }
            if let c = head["checkpoint"], c != .null {
                handle.write(Data((JSONValue.object(JSONObject([("checkpoint", c)])).jsonString + "\n").utf8))
            }
            if let output {
                try handle.close()
                FileHandle.standardError.write(Data("\rexported \(count) events to \(output)\n".utf8))
            }
        }
    }
}
