import Foundation
import NIOCore
import RepriseCore
import NIOPosix
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

/// One uploaded part of a multipart upload: its number (1 ... 10,000) and the ETag the storage
/// answered for it.
public struct UploadedPart: Sendable, Equatable {
    public var number: Int
    public var etag: String
    public init(number: Int, etag: String) {
        self.number = number
        self.etag = etag
    }
}

/// A repository that lets clients upload a large file in parts straight to the storage (MLflow's
/// proxied multipart upload, `mpu/create|complete|abort`): the server starts the upload and hands
/// out one presigned URL per part, the client PUTs the parts there, and the server completes or
/// aborts the upload. The parts' bytes never pass through the server. (MLflow's
/// `MultipartUploadMixin`; only object stores have it.)
public protocol MultipartUploadRepository: ArtifactRepository {
    /// Starts an upload of the file at `path`.
    /// - Returns: the storage's upload id and, for parts 1 ... `partCount`, the URL to PUT each to.
    /// - Throws: `RepriseError.invalid` for a part count outside 1 ... 10,000.
    func beginMultipartUpload(_ path: [String], partCount: Int) async throws -> (uploadID: String, partURLs: [String])
    /// Joins the parts into the file at `path`.
    /// - Returns: the size of the file.
    func finishMultipartUpload(_ path: [String], uploadID: String, parts: [UploadedPart]) async throws -> Int64
    /// Abandons an upload and drops its parts.
    func cancelMultipartUpload(_ path: [String], uploadID: String) async throws
}

/// Artifacts as files under one root folder. Paths can never leave the root: components are
/// checked before they get here, and `..`, `.` and empty components are rejected again.
///
/// Nothing here blocks a caller's thread: files are read, written, listed and removed through
/// swift-nio's `FileSystem.shared`, which runs each system call on NIO's blocking thread pool. Two
/// steps have no `FileSystem` equivalent and run on that same pool (`NIOThreadPool.singleton`)
/// directly: the `lstat` walk that refuses symbolic links (one pool job for the whole walk, not one
/// hop per component, and a consistent look at the path), and the `rename(2)` that makes an upload
/// appear whole (`FileSystem.moveItem` refuses an existing destination, and `replaceItem` removes
/// the old file first, so neither replaces a file atomically). Sizes in a listing are read by one
/// pool job of `lstat`s for the whole folder rather than one hop per entry.
public struct LocalArtifactRepository: ArtifactRepository {
    public let root: String
    let fileSystem = FileSystem.shared
    static let chunkSize: Int64 = 256 * 1024

    /// Names that are an upload in progress (`.upload-<uuid>`): never listed.
    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".upload-") }

    /// Does no I/O: the folder is created by `prepare()` (at start-up) or by the first write.
    /// - Parameter root: the folder, absolute or relative to the working directory.
    public init(root: String) {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        self.root = Validation.normpath(absolute)
    }

    /// Creates the root folder if it is missing (the server calls this once, at start-up).
    public func prepare() async throws {
        try await fileSystem.createDirectory(at: FilePath(root), withIntermediateDirectories: true, permissions: nil)
    }

    /// The filesystem path for checked components, refusing any component that is a symbolic link.
    ///
    /// Links are never followed inside the root: a link planted in the artifact folder (by another
    /// process or an unpacked archive) would otherwise let GET, list, PUT or DELETE reach outside it.
    /// Each existing component is checked with `lstat`; the first missing one ends the walk, since
    /// nothing below it exists yet. (A process that can swap a folder for a link between this check
    /// and the open already has write access to the root; that race is out of scope, see
    /// docs/security.md.)
    public func localPath(_ path: [String]) async throws -> String {
        for c in path where !Validation.isPlainPathComponent(c) {
            throw RepriseError.invalid("Invalid path")
        }
        let root = self.root
        try await NIOThreadPool.singleton.runIfActive { try Self.walk(root: root, path) }
        return path.isEmpty ? root : root + "/" + path.joined(separator: "/")
    }

    /// The `lstat` walk of `localPath` (blocking: run it on the thread pool).
    static func walk(root: String, _ path: [String]) throws {
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
    }

    public func write<S: AsyncSequence & Sendable>(
        _ path: [String], contents: S, beforeCommit: (@Sendable () async throws -> Void)?
    ) async throws -> Int64
    where S.Element == ByteBuffer {
        guard !path.isEmpty else { throw RepriseError.invalid("Invalid path") }
        let target = try await localPath(path)
        // The walk of `path` has already checked every folder above it.
        let parent = path.count == 1 ? root : root + "/" + path.dropLast().joined(separator: "/")
        if try await fileSystem.info(forFileAt: FilePath(target), infoAboutSymbolicLink: true)?.type == .directory {
            throw RepriseError.invalid("Cannot write to '\(path.joined(separator: "/"))': it is a directory")
        }
        do {
            try await fileSystem.createDirectory(at: FilePath(parent), withIntermediateDirectories: true, permissions: nil)
        } catch is FileSystemError {
            throw RepriseError.invalid("Cannot create the folder for '\(path.joined(separator: "/"))'")
        }
        // Short and fixed-length whatever the name: a 255-byte name must still leave room.
        let temp = parent + "/.upload-\(RandomID.uuid())"
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
            _ = try await localPath(path)  // no link was planted on the way while the body arrived
            let failure = try await NIOThreadPool.singleton.runIfActive { () -> Int32? in rename(temp, target) == 0 ? nil : errno }
            if let failure { throw RepriseError(.internalError, "Could not store the artifact (errno \(failure))") }
        } catch {
            // Not in this (possibly cancelled) task: the half-written file must still go.
            let fileSystem = self.fileSystem
            await Task.detached {
                _ = try? await fileSystem.removeItem(at: FilePath(temp), strategy: .sequential, recursively: false)
            }.value
            throw error
        }
        return written
    }

    public func kind(_ path: [String]) async throws -> ArtifactKind {
        let p = try await localPath(path)
        guard let info = try await fileSystem.info(forFileAt: FilePath(p), infoAboutSymbolicLink: true) else {
            return .missing
        }
        switch info.type {
        case .directory: return .directory
        case .regular: return .file(size: info.size)
        default: return .missing
        }
    }

    public func read(_ path: [String], consume: (ByteBuffer) async throws -> Void) async throws {
        let p = try await localPath(path)
        try await fileSystem.withFileHandle(forReadingAt: FilePath(p)) { handle in
            for try await chunk in handle.readChunks(chunkLength: .bytes(Self.chunkSize)) {
                try await consume(chunk)
            }
        }
    }

    public func list(_ path: [String]) async throws -> [ArtifactFileInfo]? {
        let p: String
        do {
            p = try await localPath(path)
        } catch let e as RepriseError where e.code == .resourceDoesNotExist {
            return nil  // a path under a file: nothing to list, as for any missing path
        }
        guard try await fileSystem.info(forFileAt: FilePath(p), infoAboutSymbolicLink: true)?.type == .directory else { return nil }
        var names: [String] = []
        try await fileSystem.withDirectoryHandle(atPath: FilePath(p)) { dir in
            for try await batch in dir.listContents().batched() {
                for entry in batch where !Self.isTemporary(entry.name.string) { names.append(entry.name.string) }
            }
        }
        // What each entry is, by lstat (links are never listed, never followed): one pool job.
        let found = names
        let entries = try await NIOThreadPool.singleton.runIfActive { () -> [ArtifactFileInfo] in
            var out: [ArtifactFileInfo] = []
            for name in found.sorted() {
                var st = stat()
                guard lstat(p + "/" + name, &st) == 0 else { continue }  // gone since the listing
                switch st.st_mode & S_IFMT {
                case S_IFDIR: out.append(ArtifactFileInfo(path: name, isDir: true, fileSize: nil))
                case S_IFREG: out.append(ArtifactFileInfo(path: name, isDir: false, fileSize: Int64(st.st_size)))
                default: continue
                }
            }
            return out
        }
        return entries
    }

    public func delete(_ path: [String]) async throws {
        let p: String
        do {
            p = try await localPath(path)
        } catch let e as RepriseError where e.code == .resourceDoesNotExist {
            return  // under a file: nothing there to delete
        }
        guard !path.isEmpty else { throw RepriseError.invalid("Refusing to delete the artifact root") }
        // Links inside a folder are removed, never followed (entries are told apart by d_type).
        _ = try await fileSystem.removeItem(at: FilePath(p), strategy: .sequential, recursively: true)
    }
}
