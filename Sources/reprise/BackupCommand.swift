import ArgumentParser
import Foundation
import RepriseRepro
import RepriseSQLite
import ReprisePostgres

/// `reprise backup`: a consistent copy of a SQLite store taken while the server keeps serving, with
/// the secret key the copy needs beside it.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy a SQLite store while the server keeps serving (a consistent online backup).",
        discussion: """
            Writes a consistent copy of the database (what its write-ahead log holds included) to --to, \
            then copies the folder's secret key file (reprise-secret.key) beside it: without that key the \
            copy's audit chain cannot be verified nor its sealed webhook secrets read. (With \
            REPRISE_SECRET_KEY set there is no key file: the restored server needs the same variable.) \
            Restore: start `reprise server --backend-store-uri sqlite:///<the copy>`, or stop the server \
            and put the copy in place of its database. PostgreSQL stores are backed up with pg_dump \
            (docs/deploy.md). Artifacts are not part of the database: copy the artifact folder or bucket.
            """)

    @Option(help: "The store to back up (default: sqlite:///reprise-data/reprise.db, the server's default).")
    var backendStoreURI: String?

    @Option(help: "The file to write; it must not exist yet. Its folder gets the secret key file.")
    var to: String

    @Flag(help: "No progress bar on standard error.")
    var quiet = false

    func run() async throws {
        let cwd = FileManager.default.currentDirectoryPath
        if let uri = backendStoreURI, PostgresLocation.isPostgres(uri) {
            throw ValidationError(
                "reprise backup copies SQLite stores. For PostgreSQL use pg_dump, while the servers keep running: pg_dump -Fc -f reprise.dump '\(PostgresLocation.redacted(uri))' (restore with pg_restore; see docs/deploy.md).")
        }
        let source = try backendStoreURI.map { try ServerCommand.sqlitePath($0, cwd: cwd) } ?? cwd + "/reprise-data/reprise.db"
        let fm = FileManager.default
        guard fm.fileExists(atPath: source) else {
            throw ValidationError("No database at \(source). Give the store the server uses: --backend-store-uri sqlite:///path/to/reprise.db.")
        }
        let destination = to.hasPrefix("/") ? to : cwd + "/" + to
        if fm.fileExists(atPath: destination) {
            throw ValidationError("\(destination) exists already. Back up to a new file (a dated name, for example).")
        }
        let folder = (destination as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("The folder \(folder) does not exist. Create it first.")
        }
        // The key goes beside the copy, where a server started on it looks; a different key there
        // already would leave the copy unreadable, so that is refused before any work.
        let sourceKey = ServerCommand.keyFile(besideDatabase: source)
        let targetKey = ServerCommand.keyFile(besideDatabase: destination)
        let key = fm.contents(atPath: sourceKey)
        if let key, sourceKey != targetKey, let existing = fm.contents(atPath: targetKey), existing != key {
            throw ValidationError(
                "\(targetKey) holds another store's secret key, and the copy needs its own beside it. Back up into a folder of its own.")
        }

        // The copy is written under a temporary name and renamed once complete, so a backup cut
        // short never looks like a finished one. Progress: the copy's size against the source's.
        let partial = destination + ".partial"
        try? fm.removeItem(atPath: partial)
        let total = [source, source + "-wal"].compactMap { try? fm.attributesOfItem(atPath: $0)[.size] as? Int64 }.reduce(0, +)
        let progress = ProgressReporter(enabled: !quiet, verbs: ("backing up", "backed up"))
        progress.begin(label: (source as NSString).lastPathComponent, totalBytes: max(total, 1), totalFiles: 1)
        let watcher = Task {
            var seen: Int64 = 0
            while !Task.isCancelled {
                let now = (try? fm.attributesOfItem(atPath: partial)[.size] as? Int64) ?? 0
                if now > seen {
                    progress.advance(bytes: Int(now - seen))
                    seen = now
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return seen
        }
        do {
            try SQLiteDriver.backup(from: source, to: partial)
        } catch {
            watcher.cancel()
            try? fm.removeItem(atPath: partial)
            throw ValidationError("The backup of \(source) failed: \(error)")
        }
        watcher.cancel()
        let seen = await watcher.value
        let written = (try? fm.attributesOfItem(atPath: partial)[.size] as? Int64) ?? 0
        if written > seen { progress.advance(bytes: Int(written - seen)) }
        progress.fileDone()
        try fm.moveItem(atPath: partial, toPath: destination)
        progress.finish()
        if let key, sourceKey != targetKey, !fm.fileExists(atPath: targetKey) {
            guard fm.createFile(atPath: targetKey, contents: key, attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("The copy is at \(destination), but the key file \(targetKey) could not be written: copy \(sourceKey) there yourself.")
            }
        }
        print("backed up \(source) to \(destination)")
        if key != nil {
            print("secret key: \(targetKey)")
        } else {
            print("no key file beside the store: a server on the copy needs the same REPRISE_SECRET_KEY as this one")
        }
    }
}
