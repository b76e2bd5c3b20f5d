import Foundation
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

/// Copies the artifacts of an MLflow server that proxied them (`mlflow server
/// --artifacts-destination DIR`, locations `mlflow-artifacts:/<path>`) from its folder into
/// Reprise's, same relative paths, so every stored location (runs, logged models, model versions)
/// resolves unchanged. Each file is written under a temporary name, renamed into place, then read
/// back and its SHA-256 compared with the source's; a file already there with the same content is
/// left alone, so copying again continues an interrupted copy.
public struct ArtifactCopier: Sendable {
    public var sourceRoot: String
    public var destinationRoot: String

    public init(sourceRoot: String, destinationRoot: String) {
        self.sourceRoot = sourceRoot
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
            let root = sourceRoot + "/" + rel
            guard let walker = fm.enumerator(atPath: root) else { continue }
            while let item = walker.nextObject() as? String {
                let path = root + "/" + item
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
                // Links are not followed out of the folder: only plain files are copied.
                let attributes = try fm.attributesOfItem(atPath: path)
                guard attributes[.type] as? FileAttributeType == .typeRegular else { continue }
                plan.append((rel + "/" + item, (attributes[.size] as? Int64) ?? 0))
            }
        }
        progress.begin("artifacts", total: plan.count)
        for (relative, size) in plan {
            let from = sourceRoot + "/" + relative
            let to = destinationRoot + "/" + relative
            let sourceDigest = try Self.sha256(path: from)
            if (try? fm.attributesOfItem(atPath: to)[.size] as? Int64) == size, (try? Self.sha256(path: to)) == sourceDigest {
                report.unchanged += 1
            } else {
                try fm.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let partial = to + ".reprise-import-partial"
                try? fm.removeItem(atPath: partial)
                try fm.copyItem(atPath: from, toPath: partial)
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

    static func sha256(path: String) throws -> String { try DataHasher.hashFile(path).sha256 }
}
