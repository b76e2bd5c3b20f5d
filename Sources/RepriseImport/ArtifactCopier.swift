import Crypto
import Foundation
import RepriseClient
import RepriseCore
import RepriseRepro

/// What copying an import's artifacts did.
public struct ArtifactCopyReport: Sendable {
    public var files = 0
    public var bytes: Int64 = 0
    /// Files already there with the same content (an earlier import), not copied again.
    public var unchanged = 0
    /// Files whose copy did not read back with the source's SHA-256.
    public var mismatched: [String] = []
    /// Experiments whose artifacts are not under the source folder's `mlflow-artifacts:` layout.
    public var referenced: [String] = []
}

/// Where the artifacts of an MLflow server that proxied them (`mlflow server
/// --artifacts-destination DIR`, locations `mlflow-artifacts:/<path>`) are read from: that folder,
/// or the server itself (its `mlflow-artifacts` API), when only the server can be reached.
public enum ArtifactOrigin: Sendable {
    case folder(String)
    case server(RepriseClient)
}

/// Copies those artifacts into Reprise's folder, same relative paths, so every stored location
/// (runs, logged models, model versions) resolves unchanged. Each file is written under a temporary
/// name, renamed into place, then read back and its SHA-256 compared with what was read from the
/// source; a file already there with the same content is left alone, so copying again continues an
/// interrupted copy.
public struct ArtifactCopier: Sendable {
    public var origin: ArtifactOrigin
    public var destinationRoot: String

    public init(origin: ArtifactOrigin, destinationRoot: String) {
        self.origin = origin
        self.destinationRoot = destinationRoot
    }

    static let scheme = "mlflow-artifacts:"

    /// The path under the artifact folder that a proxied location names, if it is one; nil for any
    /// other location (a local path, `s3://…`) or one that would leave the folder.
    static func relativePath(_ location: String) -> String? {
        guard location.hasPrefix(scheme) else { return nil }
        var rest = location.dropFirst(scheme.count)
        if rest.hasPrefix("//") {  // mlflow-artifacts://host:port/path
            rest = rest.dropFirst(2)
            guard let slash = rest.firstIndex(of: "/") else { return nil }
            rest = rest[slash...]
        }
        let parts = rest.split(separator: "/").filter { $0 != "." }
        guard !parts.isEmpty, !parts.contains("..") else { return nil }
        return parts.joined(separator: "/")
    }

    public func copy(experiments: [Experiment], progress: any ImportProgress) async throws -> ArtifactCopyReport {
        var report = ArtifactCopyReport()
        let fm = FileManager.default
        var plan: [(relative: String, size: Int64)] = []
        for e in experiments {
            guard let rel = Self.relativePath(e.artifactLocation) else {
                if !e.artifactLocation.isEmpty { report.referenced.append("\(e.name): \(e.artifactLocation)") }
                continue
            }
            plan += try await list(rel)
        }
        progress.begin("artifacts", total: plan.count)
        for (relative, size) in plan {
            let to = destinationRoot + "/" + relative
            try fm.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let partial = to + ".reprise-import-partial"
            try? fm.removeItem(atPath: partial)
            let sourceDigest = try await fetch(relative, to: partial)
            if (try? Self.sha256(path: to)) == sourceDigest {
                try fm.removeItem(atPath: partial)
                report.unchanged += 1
            } else {
                if fm.fileExists(atPath: to) { try fm.removeItem(atPath: to) }
                try fm.moveItem(atPath: partial, toPath: to)
                if try Self.sha256(path: to) != sourceDigest { report.mismatched.append(relative) }
            }
            report.files += 1
            report.bytes += size
            progress.advance(1)
            if Task.isCancelled { throw ImportInterrupted() }
        }
        progress.end()
        return report
    }

    /// The files under `relative` at the origin, with their sizes.
    func list(_ relative: String) async throws -> [(relative: String, size: Int64)] {
        switch origin {
        case .folder(let sourceRoot):
            let fm = FileManager.default
            let root = sourceRoot + "/" + relative
            guard fm.fileExists(atPath: root) else { return [] }
            // Links to files are copied as the files they name: the folder is the user's own.
            return try DataHasher.listFiles(root).map { (relative + "/" + $0.relative, $0.size) }
        case .server(let client):
            return try await client.listProxiedArtifacts(path: relative).map { ($0.path, $0.size ?? 0) }
        }
    }

    /// Copies one file from the origin to `path`; returns the SHA-256 of what was read.
    func fetch(_ relative: String, to path: String) async throws -> String {
        switch origin {
        case .folder(let sourceRoot):
            try FileManager.default.copyItem(atPath: sourceRoot + "/" + relative, toPath: path)
            return try Self.sha256(path: sourceRoot + "/" + relative)
        case .server(let client):
            guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
                throw RepriseError.invalid("Cannot write \(path).")
            }
            defer { try? out.close() }
            var hasher = SHA256()
            try await client.readProxiedArtifact(path: relative) { chunk in
                let bytes = Array(chunk.readableBytesView)
                hasher.update(data: bytes)
                try out.write(contentsOf: bytes)
            }
            return Hex.encode(hasher.finalize())
        }
    }

    static func sha256(path: String) throws -> String { try DataHasher.hashFile(path).sha256 }
}
