import Crypto
import Foundation
import NIOCore
import RepriseArtifacts
import RepriseClient
import RepriseCore

/// What copying an import's artifacts did.
public struct ArtifactCopyReport: Sendable {
    public var files = 0
    public var bytes: Int64 = 0
    /// Files already there with the same content (an earlier import), not copied again.
    public var unchanged = 0
    /// Files whose copy did not read back with the SHA-256 of what was read from the source.
    public var mismatched: [String] = []
    /// Experiments whose artifacts are not under the proxied `mlflow-artifacts:` layout.
    public var referenced: [String] = []
}

/// Copies the artifacts of an MLflow server that proxied them (`mlflow server
/// --artifacts-destination DIR|s3://…`, locations `mlflow-artifacts:/<path>`) from where it kept
/// them (its folder or bucket, or the server itself) into Reprise's artifact store (a folder or a
/// bucket), same relative paths, so every stored location (runs, logged models, model versions)
/// resolves unchanged. Both ends are artifact repositories, so a folder refuses symbolic links and
/// paths outside it as the server does.
///
/// Each file is read once from the source into a temporary file (its SHA-256 taken on the way),
/// written to the destination (which makes it appear whole), then read back from there and its
/// SHA-256 compared. A file already at the destination with the same content is left alone, so
/// copying again continues an interrupted copy.
public struct ArtifactCopier: Sendable {
    public var origin: any ArtifactRepository
    public var destination: any ArtifactRepository

    public init(origin: any ArtifactRepository, destination: any ArtifactRepository) {
        self.origin = origin
        self.destination = destination
    }

    static let scheme = "mlflow-artifacts:"
    static let maxFiles = 10_000_000
    static let maxDepth = 64

    /// The path under the artifact store that a proxied location names, if it is one; nil for any
    /// other location (a local path, `s3://…`) or one that would leave the store.
    static func relativePath(_ location: String) -> [String]? {
        guard location.hasPrefix(scheme) else { return nil }
        var rest = location.dropFirst(scheme.count)
        if rest.hasPrefix("//") {  // mlflow-artifacts://host:port/path
            rest = rest.dropFirst(2)
            guard let slash = Validation.firstSlash(in: rest) else { return nil }
            rest = rest[slash...]
        }
        let parts = Validation.pathComponents(rest).filter { !Validation.isDot($0) }
        guard !parts.isEmpty, parts.allSatisfy(Validation.isPlainPathComponent) else { return nil }
        return parts
    }

    public func copy(experiments: [Experiment], progress: any ImportProgress) async throws -> ArtifactCopyReport {
        var report = ArtifactCopyReport()
        var plan: [(path: [String], size: Int64)] = []
        for e in experiments {
            guard let root = Self.relativePath(e.artifactLocation) else {
                if !e.artifactLocation.isEmpty { report.referenced.append("\(e.name): \(e.artifactLocation)") }
                continue
            }
            plan += try await files(under: root)
        }
        progress.begin("artifacts", total: plan.count)
        let staging = NSTemporaryDirectory() + "reprise-import-" + RandomID.uuid()
        defer { try? FileManager.default.removeItem(atPath: staging) }
        for (path, size) in plan {
            switch try await copyFile(path, staging: staging).outcome {
            case .unchanged: report.unchanged += 1
            case .mismatched: report.mismatched.append(path.joined(separator: "/"))
            case .copied: break
            }
            report.files += 1
            report.bytes += size
            progress.advance(1)
            if Task.isCancelled { throw ImportInterrupted() }
        }
        progress.end()
        return report
    }

    public enum FileOutcome: Sendable { case copied, unchanged, mismatched }

    /// Copies one file (staged through `staging`, a temporary file): unchanged when the destination
    /// already held the same bytes, mismatched when the copy does not read back as read.
    /// - Returns: the outcome and the SHA-256 of what was read from the origin.
    public func copyFile(_ path: [String], staging: String) async throws -> (outcome: FileOutcome, sha256: String) {
        let sourceDigest = try await stage(path, to: staging)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        if case .file = try await destination.kind(path), try await digest(destination, path) == sourceDigest {
            return (.unchanged, sourceDigest)
        }
        _ = try await destination.write(path, contents: FileChunks(path: staging))
        return (try await digest(destination, path) == sourceDigest ? .copied : .mismatched, sourceDigest)
    }

    /// The SHA-256 of a file at the origin.
    public func originDigest(_ path: [String]) async throws -> String { try await digest(origin, path) }

    /// Every file under `root` at the origin, with its size, folder by folder.
    func files(under root: [String]) async throws -> [(path: [String], size: Int64)] {
        var out: [(path: [String], size: Int64)] = []
        var folders = [root]
        while let folder = folders.popLast() {
            // A source that keeps answering with folders (a broken or hostile server) is bounded.
            guard folder.count <= root.count + Self.maxDepth, out.count + folders.count <= Self.maxFiles else {
                throw RepriseError(.resourceExhausted, "More than \(Self.maxFiles) artifacts, or folders deeper than \(Self.maxDepth), under \(root.joined(separator: "/")).")
            }
            guard let entries = try await origin.list(folder) else { continue }
            for entry in entries {
                // An entry is named relative to its folder; only its last component is taken.
                guard let name = Validation.pathComponents(entry.path).last, Validation.isPlainPathComponent(name) else { continue }
                if entry.isDir { folders.append(folder + [name]) } else { out.append((folder + [name], entry.fileSize ?? 0)) }
            }
        }
        return out.sorted { $0.path.joined(separator: "/") < $1.path.joined(separator: "/") }
    }

    /// Reads the origin's file into `file`; returns the SHA-256 of what was read.
    func stage(_ path: [String], to file: String) async throws -> String {
        guard FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600]),
            let out = FileHandle(forWritingAtPath: file)
        else {
            throw RepriseError.invalid("Cannot write the temporary file \(file).")
        }
        defer { try? out.close() }
        var hasher = SHA256()
        try await origin.read(path) { chunk in
            let bytes = Array(chunk.readableBytesView)
            hasher.update(data: bytes)
            try out.write(contentsOf: bytes)
        }
        return Hex.encode(hasher.finalize())
    }

    func digest(_ repository: any ArtifactRepository, _ path: [String]) async throws -> String {
        var hasher = SHA256()
        try await repository.read(path) { chunk in hasher.update(data: Array(chunk.readableBytesView)) }
        return Hex.encode(hasher.finalize())
    }
}

/// A local file as a stream of 1 MiB buffers, for an artifact repository's `write`.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        mutating func next() async throws -> ByteBuffer? {
            guard let handle else { throw RepriseError.invalid("Cannot read a staged artifact.") }
            guard let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: FileHandle(forReadingAtPath: path)) }
}

/// An MLflow server's proxied artifacts (its `mlflow-artifacts` API) as a read-only repository:
/// for an import when only the server can be reached.
public struct ProxiedArtifactRepository: ArtifactRepository {
    public let client: RepriseClient
    public init(client: RepriseClient) { self.client = client }

    public func list(_ path: [String]) async throws -> [ArtifactFileInfo]? {
        let r = try await client.call(.GET, "/api/2.0/mlflow-artifacts/artifacts", query: [("path", path.joined(separator: "/"))])
        guard case .array(let entries)? = r["files"] else { return [] }
        return entries.compactMap { e in
            guard let name = e["path"]?.stringValue else { return nil }
            let size: Int64? = if case .int(let n)? = e["file_size"] { n } else { nil }
            return ArtifactFileInfo(path: name, isDir: e["is_dir"] == .bool(true), fileSize: size)
        }
    }

    public func read(_ path: [String], consume: (ByteBuffer) async throws -> Void) async throws {
        try await client.readProxiedArtifact(path: path.joined(separator: "/"), consume: consume)
    }

    public func kind(_ path: [String]) async throws -> ArtifactKind {
        throw RepriseError.invalid("The MLflow server's artifacts are read, not inspected.")
    }

    public func write<S: AsyncSequence & Sendable>(
        _ path: [String], contents: S, beforeCommit: (@Sendable () async throws -> Void)?
    ) async throws -> Int64 where S.Element == ByteBuffer {
        throw RepriseError.invalid("An import never writes to the MLflow server.")
    }

    public func delete(_ path: [String]) async throws {
        throw RepriseError.invalid("An import never deletes from the MLflow server.")
    }
}
