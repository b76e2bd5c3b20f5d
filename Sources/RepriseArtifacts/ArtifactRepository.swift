import Foundation
import NIOCore
import RepriseCore
import _NIOFileSystem

#if canImport(Glibc)
import Glibc
#endif

/// One entry of an artifact listing.
public struct ArtifactFileInfo: Sendable, Equatable {
    /// The path relative to the listed root (the basename for a proxy listing).
    public var path: String
    public var isDir: Bool
    public var fileSize: Int64?
    public init(path: String, isDir: Bool, fileSize: Int64?) {
        self.path = path
        self.isDir = isDir
        self.fileSize = fileSize
    }
    public var json: JSONValue {
        var o = JSONObject([("path", .string(path)), ("is_dir", .bool(isDir))])
        if let fileSize, !isDir { o["file_size"] = .int(fileSize) }
        return .object(o)
    }
}

/// What is at an artifact path.
public enum ArtifactKind: Sendable, Equatable {
    case missing, file(size: Int64), directory
}

/// Artifact storage addressed by relative paths that have already been split into checked
/// components (see `Validation.artifactPathComponents`).
public protocol ArtifactRepository: Sendable {
    /// Streams `contents` into the file at `path`, creating parent folders; the file appears whole
    /// or not at all.
    /// - Parameter beforeCommit: runs after the last byte arrived and just before the file appears;
    ///   throwing discards the upload (a seal that came while a slow body was arriving).
    /// - Returns: the number of bytes written.
    func write<S: AsyncSequence & Sendable>(
        _ path: [String], contents: S, beforeCommit: (@Sendable () async throws -> Void)?
    ) async throws -> Int64
    where S.Element == ByteBuffer
    func kind(_ path: [String]) async throws -> ArtifactKind
    /// Streams the file at `path` to `consume`, chunk by chunk, in constant memory.
    func read(_ path: [String], consume: (ByteBuffer) async throws -> Void) async throws
    /// The immediate children of a directory, or nil when `path` is not a directory.
    func list(_ path: [String]) async throws -> [ArtifactFileInfo]?
    /// Deletes a file or a directory tree. Missing paths are not an error.
    func delete(_ path: [String]) async throws
}

extension ArtifactRepository {
    public func write<S: AsyncSequence & Sendable>(_ path: [String], contents: S) async throws -> Int64
    where S.Element == ByteBuffer {
        try await write(path, contents: contents, beforeCommit: nil)
    }
}

/// Artifacts as files under one root folder. Paths can never leave the root: components are
/// checked before they get here, and `..`, `.` and empty components are rejected again.
public struct LocalArtifactRepository: ArtifactRepository {
    public let root: String
    let fileSystem = FileSystem.shared
    static let chunkSize: Int64 = 256 * 1024

    /// - Parameter root: the folder; created if missing.
    public init(root: String) throws {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        self.root = Validation.normpath(absolute)
        try FileManager.default.createDirectory(atPath: self.root, withIntermediateDirectories: true)
    }

    /// The filesystem path for checked components, refusing any component that is a symbolic link.
    ///
    /// Links are never followed inside the root: a link planted in the artifact folder (by another
    /// process or an unpacked archive) would otherwise let GET, list, PUT or DELETE reach outside it.
    /// Each existing component is checked with `lstat`; the first missing one ends the walk, since
    /// nothing below it exists yet. (A process that can swap a folder for a link between this check
    /// and the open already has write access to the root; that race is out of scope, see
    /// docs/security.md.)
    public func localPath(_ path: [String]) throws -> String {
        for c in path where c.isEmpty || c == "." || c == ".." || c.contains("/") || Validation.hasControlCharacter(c) {
            throw RepriseError.invalid("Invalid path")
        }
        var current = root
        for (i, c) in path.enumerated() {
            current += "/" + c
            var st = stat()
            if lstat(current, &st) != 0 { break }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                throw RepriseError(
                    .permissionDenied,
                    "'\(path.joined(separator: "/"))' goes through a symbolic link in the artifact store; links are not followed.")
            }
            // A file where the path needs a folder: nothing can exist below it (and the file
            // system's "not a directory" must not surface as a server error).
            if i < path.count - 1 && (st.st_mode & S_IFMT) != S_IFDIR {
                throw RepriseError.notFound(
                    "No artifact at '\(path.joined(separator: "/"))': '\(path[...i].joined(separator: "/"))' is a file, not a folder.")
            }
        }
        return path.isEmpty ? root : root + "/" + path.joined(separator: "/")
    }

    /// Whether the entry at `full` is a symbolic link (not followed).
    static func isLink(_ full: String) -> Bool {
        var st = stat()
        return lstat(full, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    public func write<S: AsyncSequence & Sendable>(
        _ path: [String], contents: S, beforeCommit: (@Sendable () async throws -> Void)?
    ) async throws -> Int64
    where S.Element == ByteBuffer {
        guard !path.isEmpty else { throw RepriseError.invalid("Invalid path") }
        let target = try localPath(path)
        let parent = try localPath(Array(path.dropLast()))
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDir), isDir.boolValue {
            throw RepriseError.invalid("Cannot write to '\(path.joined(separator: "/"))': it is a directory")
        }
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw RepriseError.invalid("Cannot create the folder for '\(path.joined(separator: "/"))'")
        }
        // Short and fixed-length whatever the name: a 255-byte name must still leave room.
        let temp = parent + "/.upload-\(UUID().uuidString)"
        var written: Int64 = 0
        do {
            try await fileSystem.withFileHandle(
                forWritingAt: FilePath(temp), options: .newFile(replaceExisting: true)
            ) { handle in
                try await handle.withBufferedWriter { writer in
                    for try await buffer in contents {
                        written += Int64(buffer.readableBytes)
                        _ = try await writer.write(contentsOf: buffer)
                    }
                }
                try await handle.synchronize()
            }
            try await beforeCommit?()
            _ = try localPath(path)  // no link was planted on the way while the body arrived
            guard rename(temp, target) == 0 else {
                throw RepriseError(.internalError, "Could not store the artifact (errno \(errno))")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
        return written
    }

    public func kind(_ path: [String]) async throws -> ArtifactKind {
        let p = try localPath(path)
        guard let info = try await fileSystem.info(forFileAt: FilePath(p), infoAboutSymbolicLink: false) else {
            return .missing
        }
        switch info.type {
        case .directory: return .directory
        case .regular: return .file(size: info.size)
        default: return .missing
        }
    }

    public func read(_ path: [String], consume: (ByteBuffer) async throws -> Void) async throws {
        let p = try localPath(path)
        try await fileSystem.withFileHandle(forReadingAt: FilePath(p)) { handle in
            for try await chunk in handle.readChunks(chunkLength: .bytes(Self.chunkSize)) {
                try await consume(chunk)
            }
        }
    }

    public func list(_ path: [String]) async throws -> [ArtifactFileInfo]? {
        let p: String
        do {
            p = try localPath(path)
        } catch let e as RepriseError where e.code == .resourceDoesNotExist {
            return nil  // a path under a file: nothing to list, as for any missing path
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue else { return nil }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []
        var out: [ArtifactFileInfo] = []
        for name in names.sorted() where !(name.hasPrefix(".") && name.contains(".upload-")) {
            let full = p + "/" + name
            if Self.isLink(full) { continue }  // never listed, never followed
            var childIsDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &childIsDir) else { continue }
            if childIsDir.boolValue {
                out.append(ArtifactFileInfo(path: name, isDir: true, fileSize: nil))
            } else {
                let size = (try? FileManager.default.attributesOfItem(atPath: full)[.size] as? NSNumber)?.int64Value ?? 0
                out.append(ArtifactFileInfo(path: name, isDir: false, fileSize: size))
            }
        }
        return out
    }

    public func delete(_ path: [String]) async throws {
        let p: String
        do {
            p = try localPath(path)
        } catch let e as RepriseError where e.code == .resourceDoesNotExist {
            return  // under a file: nothing there to delete
        }
        guard !path.isEmpty else { throw RepriseError.invalid("Refusing to delete the artifact root") }
        if FileManager.default.fileExists(atPath: p) {
            try FileManager.default.removeItem(atPath: p)
        }
    }
}
