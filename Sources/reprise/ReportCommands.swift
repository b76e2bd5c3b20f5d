import ArgumentParser
import Crypto
import Foundation
import NIOCore
import RepriseClient
import RepriseCore
import RepriseRepro

struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "What changed between two runs: code, data, environment, params, seeds and metrics.")

    @OptionGroup var server: ClientOptions
    @Argument(help: "The first run.") var runA: String
    @Argument(help: "The second run.") var runB: String
    @Option(name: .long, help: "text or json.") var format: String = "text"

    func run() async throws {
        let d = try await runRepro { try await RunDiff(client: server.client).diff(runA, runB) }
        print(format == "json" ? d.jsonString : RunDiff.text(d))
    }
}

struct RunbookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runbook",
        abstract: "Write a run's reproducibility report (md, html or json) and a script that reproduces it.")

    @OptionGroup var server: ClientOptions
    @Argument(help: "The run.") var runID: String
    @Option(name: .long, help: "md, html or json.") var format: String = "md"
    @Option(name: [.short, .long], help: "Folder to write the report and reproduce.sh into (default: runbook-<run>).")
    var output: String?

    func validate() throws {
        guard ["md", "html", "json"].contains(format) else { throw ValidationError("--format must be md, html or json.") }
    }

    func run() async throws {
        let book = try await runRepro { try await Runbook(client: server.client).build(runID) }
        let dir = output ?? "runbook-\(runID.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let report: String
        switch format {
        case "html": report = book.html
        case "json": report = book.json.jsonString
        default: report = book.markdown
        }
        let reportPath = "\(dir)/runbook.\(format)"
        let scriptPath = "\(dir)/reproduce.sh"
        try Data(report.utf8).write(to: URL(fileURLWithPath: reportPath))
        try Data(book.script.utf8).write(to: URL(fileURLWithPath: scriptPath))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scriptPath)
        print("wrote \(reportPath) and \(scriptPath)")
        if !book.missing.isEmpty {
            FileHandle.standardError.write(Data("""
                warning: run \(runID) cannot be reproduced as recorded: it does not record \(book.missing.joined(separator: " or ")).
                  reproduce.sh refuses to run; start runs with `reprise run` to record what a rebuild needs.

                """.utf8))
        }
    }
}

struct LineageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "Walk lineage from an entity: data → runs → logged models → model versions → aliases, both ways.",
        discussion: "ENTITY is run:ID, dataset:DIGEST, logged_model:ID, model_version:NAME/N, alias:NAME@ALIAS, registered_model:NAME, deployment:ID or incident:ID. A bare run id is taken as run:ID.")

    @OptionGroup var server: ClientOptions
    @Argument(help: "The entity to start from.") var entity: String
    @Option(name: .long, help: "How many steps to walk each way.") var depth: Int = 10
    @Option(name: .long, help: "text or json.") var format: String = "text"

    func run() async throws {
        let e = entity.contains(":") ? entity : "run:\(entity)"
        let r = try await runClient {
            try await server.client.call(.GET, "/api/reprise/v1/lineage", query: [("entity", e), ("depth", String(depth))])
        }
        guard let g = r["lineage"] else { return }
        if format == "json" {
            print(g.jsonString)
            return
        }
        var labels: [String: String] = [:]
        if case .array(let nodes)? = g["nodes"] {
            for n in nodes {
                let key = "\(n["type"]?.stringValue ?? ""):\(n["id"]?.stringValue ?? "")"
                labels[key] = n["label"]?.stringValue ?? ""
            }
        }
        func show(_ k: String) -> String { labels[k].map { $0.isEmpty || k.hasSuffix($0) ? k : "\(k) (\($0))" } ?? k }
        print("lineage of \(show(g["root"]?.stringValue ?? e))")
        if case .array(let edges)? = g["edges"] {
            for edge in edges {
                print("  \(show(edge["from"]?.stringValue ?? "")) --\(edge["relation"]?.stringValue ?? "")--> \(show(edge["to"]?.stringValue ?? ""))")
            }
        }
    }
}

struct ArtifactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifacts", abstract: "Read a run's artifacts, and check them against what the server recorded.",
        subcommands: [Get.self, Verify.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write one artifact of a run to standard output (or -o FILE).")
        @OptionGroup var server: ClientOptions
        @Argument(help: "The run.") var runID: String
        @Argument(help: "The artifact's path inside the run, e.g. reprise/passport.json.") var path: String
        @Option(name: [.short, .long], help: "Write to this file instead of standard output.") var output: String?

        func run() async throws {
            let data = try await runClient { () -> Data in
                let uri = try await server.client.run(id: runID).info.artifactURI
                guard let data = try await server.client.downloadArtifact(artifactURI: uri, relative: path) else {
                    throw RepriseError.notFound("Run \(runID) has no artifact \(path).")
                }
                return data
            }
            if let output {
                try data.write(to: URL(fileURLWithPath: output))
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
    }
}

extension ArtifactsCommand {
    /// Re-reads every artifact of a run through the server and compares it with the size and
    /// SHA-256 the server recorded as the file was stored.
    ///
    /// The hashing happens here, on the client, over the bytes a reader actually receives: the
    /// check then covers storage, the server's read and the transfer, and needs nothing of the
    /// server but its ordinary download route and the recorded digests.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a run's artifacts against the SHA-256 the server recorded when each was uploaded.",
            discussion: """
                Prints one line per file: ok, MISMATCH (the bytes changed since they were stored), missing \
                (recorded but gone), unrecorded (present, but not stored through this server's proxy or \
                upload-artifact, so there is nothing to compare with) or unhashed (a multipart upload whose \
                bytes went straight to the bucket and that the server has not read back yet, so only its size \
                is recorded and checked). Exits 1 when \
                any file is MISMATCH or missing.
                """)
        @OptionGroup var server: ClientOptions
        @Argument(help: "The run.") var runID: String
        @Flag(name: .long, help: "Print the results as JSON.") var json = false
        @Flag(name: .long, help: "No progress bar.") var quiet = false

        func run() async throws {
            let client = server.client
            // The same progress bar as `reprise hash` (on standard error): every byte is re-read.
            let progress = ProgressReporter(enabled: !quiet && !json)
            let results = try await runClient { () -> [(status: String, path: String, detail: String)] in
                let recorded = try await client.artifactDigests(runID: runID)
                var out: [(String, String, String)] = []
                var recordedPaths = Set<String>()
                if case .array(let files)? = recorded["files"] {
                    let total = files.reduce(Int64(0)) { sum, f in
                        if case .int(let size)? = f["size"] { return sum &+ max(0, size) }
                        return sum
                    }
                    progress.begin(label: "artifacts of run \(runID)", totalBytes: total, totalFiles: files.count)
                    for f in files {
                        guard let path = f["path"]?.stringValue, case .int(let size)? = f["size"] else { continue }
                        recordedPaths.insert(path)
                        let expected = f["sha256"]?.stringValue
                        var hasher = SHA256()
                        var seen: Int64 = 0
                        let found = try await client.readRunArtifact(runID: runID, path: path) { chunk in
                            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                            seen += Int64(chunk.readableBytes)
                            progress.advance(bytes: chunk.readableBytes)
                        }
                        progress.fileDone()
                        guard found else {
                            out.append(("missing", path, "recorded \(size) bytes; the server has no such file now"))
                            continue
                        }
                        let actual = Hex.encode(hasher.finalize())
                        if let expected {
                            if expected == actual && seen == size {
                                out.append(("ok", path, "\(size) bytes, sha256 \(actual)"))
                            } else {
                                out.append(("MISMATCH", path, "recorded \(size) bytes, sha256 \(expected); now \(seen) bytes, sha256 \(actual)"))
                            }
                        } else if seen == size {
                            out.append(("unhashed", path, "\(size) bytes as recorded; a multipart upload not yet read back, so no sha256 yet (now \(actual))"))
                        } else {
                            out.append(("MISMATCH", path, "recorded \(size) bytes (multipart upload, no sha256); now \(seen) bytes"))
                        }
                    }
                }
                progress.finish()
                for (path, size) in try await client.listRunArtifacts(runID: runID) where !recordedPaths.contains(path) {
                    out.append(("unrecorded", path, size.map { "\($0) bytes; not stored through this server, nothing to compare with" } ?? "not stored through this server"))
                }
                return out.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
            }
            let failed = results.contains { $0.status == "MISMATCH" || $0.status == "missing" }
            if json {
                printJSON([
                    "run_id": .string(runID), "ok": .bool(!failed),
                    "files": .array(results.map { .object(JSONObject([("path", .string($0.path)), ("status", .string($0.status)), ("detail", .string($0.detail))])) }),
                ])
            } else {
                for r in results { print("\(r.status.padding(toLength: 11, withPad: " ", startingAt: 0)) \(r.path)  (\(r.detail))") }
                var counts: [String: Int] = [:]
                for r in results { counts[r.status, default: 0] += 1 }
                let summary = ["ok", "MISMATCH", "missing", "unrecorded", "unhashed"].compactMap { k in counts[k].map { "\($0) \(k)" } }
                print(summary.isEmpty ? "no artifacts" : summary.joined(separator: ", "))
            }
            if failed { throw ExitCode.failure }
        }
    }
}

struct HashCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Print the content digest `reprise run --data` records for a file or folder (no server needed).",
        discussion: "The digest is the SHA-256 of the manifest: one line `<sha256>  <size>  <path>` per file, sorted bytewise by path, after the header reprise-manifest-v1.")

    @Argument(help: "Files or folders.") var paths: [String]
    @Option(name: .long, help: "Also write the manifest of the (single) input to this file.") var manifest: String?
    @Flag(name: .long, help: "No progress bar.") var quiet = false

    func run() async throws {
        let cwd = FileManager.default.currentDirectoryPath
        for path in paths {
            let d: DataDigest
            do {
                d = try await DataHasher.hash(path: path, workingDirectory: cwd, progress: ProgressReporter(enabled: !quiet))
            } catch let e as DataHashError {
                FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
                throw ExitCode.failure
            }
            print("\(d.root)  \(d.files) files  \(d.bytes) bytes  \(path)")
            if let manifest { try Data(d.manifestText.utf8).write(to: URL(fileURLWithPath: manifest)) }
        }
    }
}
