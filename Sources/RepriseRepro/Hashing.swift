import Crypto
import Foundation
import RepriseCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One file of a data input: its path relative to the input's root, size and SHA-256.
public struct ManifestEntry: Sendable, Equatable, Hashable {
    public var path: String
    public var size: Int64
    public var sha256: String

    public init(path: String, size: Int64, sha256: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }

    /// `<sha256>  <size>  <path>`: one manifest line.
    public var line: String { "\(sha256)  \(size)  \(path)" }

    public init?(line: String) {
        let parts = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[1].isEmpty, parts[3].isEmpty, let size = Int64(parts[2]) else { return nil }
        self.init(path: String(parts[4]), size: size, sha256: String(parts[0]))
    }
}

/// The content hash of a file or folder: a manifest of every file, and a root digest over it.
public struct DataDigest: Sendable {
    /// A short name (the last path component).
    public var name: String
    /// The path as given, and made absolute.
    public var path: String
    public var absolutePath: String
    /// Hex SHA-256 over the manifest text.
    public var root: String
    public var manifest: [ManifestEntry]
    public var files: Int { manifest.count }
    public var bytes: Int64 { manifest.reduce(0) { $0 + $1.size } }

    public var manifestText: String { DataHasher.manifestText(manifest) }

    /// What changed from `old` to this: paths added, removed and changed.
    public func changes(from old: [ManifestEntry]) -> (added: [String], removed: [String], changed: [String]) {
        let before = Dictionary(old.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(manifest.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        let added = after.keys.filter { before[$0] == nil }.sorted()
        let removed = before.keys.filter { after[$0] == nil }.sorted()
        let changed = after.compactMap { k, v in before[k].map { $0.sha256 != v.sha256 ? k : nil } ?? nil }.sorted()
        return (added, removed, changed)
    }
}

public enum DataHashError: Error, CustomStringConvertible {
    case notFound(String)
    case unreadable(String, String)

    public var description: String {
        switch self {
        case .notFound(let p): return "Data input \(p) does not exist."
        case .unreadable(let p, let why): return "Cannot read \(p): \(why)"
        }
    }
}

/// Hashes data inputs: every byte of every regular file, streamed in 1 MiB blocks, several files at
/// a time. The manifest is sorted by path (bytewise), so the root digest does not depend on the order
/// the file system lists files in.
public enum DataHasher {
    public static let manifestHeader = "reprise-manifest-v1"

    public static func manifestText(_ entries: [ManifestEntry]) -> String {
        ([manifestHeader] + entries.map(\.line)).joined(separator: "\n") + "\n"
    }

    public static func rootDigest(_ entries: [ManifestEntry]) -> String {
        hex(SHA256.hash(data: Array(manifestText(entries).utf8)))
    }

    public static func parseManifest(_ text: String) -> [ManifestEntry] {
        text.split(separator: "\n").dropFirst().compactMap { ManifestEntry(line: String($0)) }
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        Hex.encode(digest)
    }

    /// SHA-256 of one file, streamed.
    public static func hashFile(_ path: String, onBytes: ((Int) -> Void)? = nil) throws -> (size: Int64, sha256: String) {
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw DataHashError.unreadable(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var hasher = SHA256()
        let blockSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while true {
            let n = read(fd, buffer.baseAddress, blockSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw DataHashError.unreadable(path, String(cString: strerror(errno)))
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += Int64(n)
            onBytes?(n)
        }
        return (total, hex(hasher.finalize()))
    }

    /// Regular files under `root` (or `root` itself), as paths relative to it, sorted bytewise.
    /// Symbolic links to files are followed; links to folders are not, so a loop cannot trap the walk.
    public static func listFiles(_ root: String) throws -> [(relative: String, size: Int64)] {
        var st = stat()
        guard stat(root, &st) == 0 else { throw DataHashError.notFound(root) }
        if (st.st_mode & S_IFMT) != S_IFDIR {
            return [((root as NSString).lastPathComponent, Int64(st.st_size))]
        }
        var out: [(String, Int64)] = []
        var stack = [""]
        while let rel = stack.popLast() {
            let dir = rel.isEmpty ? root : root + "/" + rel
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: dir)
            } catch {
                throw DataHashError.unreadable(dir, "\(error.localizedDescription)")
            }
            for name in names {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                let full = root + "/" + childRel
                var lst = stat()
                guard lstat(full, &lst) == 0 else { continue }
                switch lst.st_mode & S_IFMT {
                case S_IFDIR: stack.append(childRel)
                case S_IFREG: out.append((childRel, Int64(lst.st_size)))
                case S_IFLNK:
                    var target = stat()
                    if stat(full, &target) == 0, (target.st_mode & S_IFMT) == S_IFREG { out.append((childRel, Int64(target.st_size))) }
                default: continue
                }
            }
        }
        return out.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
    }

    /// Hashes a file or folder. `progress` is told about bytes as they are read.
    public static func hash(path: String, workingDirectory: String, concurrency: Int = ProcessInfo.processInfo.activeProcessorCount,
                            progress: ProgressReporter? = nil) async throws -> DataDigest {
        let absolute = path.hasPrefix("/") ? path : (workingDirectory as NSString).appendingPathComponent(path)
        let normalized = (absolute as NSString).standardizingPath
        let files = try listFiles(normalized)
        var isDir: ObjCBool = false
        FileManager.default.fileExists(atPath: normalized, isDirectory: &isDir)
        progress?.begin(label: path, totalBytes: files.reduce(0) { $0 + $1.size }, totalFiles: files.count)
        var entries = [ManifestEntry?](repeating: nil, count: files.count)
        try await withThrowingTaskGroup(of: (Int, ManifestEntry).self) { group in
            var next = 0
            func add() {
                let i = next
                next += 1
                let (rel, _) = files[i]
                let full = isDir.boolValue ? normalized + "/" + rel : normalized
                group.addTask {
                    let (size, sha) = try hashFile(full) { progress?.advance(bytes: $0) }
                    progress?.fileDone()
                    return (i, ManifestEntry(path: rel, size: size, sha256: sha))
                }
            }
            while next < files.count && next < max(1, concurrency) { add() }
            while let (i, entry) = try await group.next() {
                entries[i] = entry
                if next < files.count { add() }
            }
        }
        progress?.finish()
        let manifest = entries.compactMap { $0 }
        return DataDigest(
            name: (normalized as NSString).lastPathComponent, path: path, absolutePath: normalized, root: rootDigest(manifest),
            manifest: manifest)
    }
}

/// A progress bar on standard error: redrawn in place on a terminal (at most ten times a second),
/// one summary line otherwise.
public final class ProgressReporter: @unchecked Sendable {
    private let lock = NSLock()
    private var label = ""
    private var totalBytes: Int64 = 0
    private var totalFiles = 0
    private var bytes: Int64 = 0
    private var files = 0
    private var started = Date()
    private var lastDraw = Date.distantPast
    private let tty: Bool
    private let enabled: Bool
    /// What the bar says while the work runs and once it is done ("hashing", "hashed").
    private let verbs: (running: String, done: String)

    public init(enabled: Bool = true, verbs: (running: String, done: String) = ("hashing", "hashed")) {
        self.enabled = enabled
        self.verbs = verbs
        tty = isatty(2) == 1
    }

    public func begin(label: String, totalBytes: Int64, totalFiles: Int) {
        lock.withLock {
            self.label = label
            self.totalBytes = totalBytes
            self.totalFiles = totalFiles
            bytes = 0
            files = 0
            started = Date()
        }
    }

    public func advance(bytes n: Int) {
        lock.withLock {
            bytes += Int64(n)
            drawIfDue()
        }
    }

    public func fileDone() {
        lock.withLock {
            files += 1
            drawIfDue()
        }
    }

    public func finish() {
        guard enabled else { return }
        lock.withLock {
            let secs = max(Date().timeIntervalSince(started), 0.001)
            let line =
                "\(verbs.done) \(label): \(files) file\(files == 1 ? "" : "s"), \(Self.size(bytes)) in \(String(format: "%.1f", secs)) s (\(Self.size(Int64(Double(bytes) / secs)))/s)"
            FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[K" : "") + line + "\n").utf8))
        }
    }

    private func drawIfDue() {
        guard enabled, tty, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        let fraction = totalBytes > 0 ? min(1, Double(bytes) / Double(totalBytes)) : 1
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: max(0, width - filled))
        let line = "\r\u{1B}[K\(verbs.running) \(label) [\(bar)] \(Int(fraction * 100))%  \(Self.size(bytes))/\(Self.size(totalBytes))  \(files)/\(totalFiles) files"
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func size(_ b: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(b)
        var i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(b) B" : "\(String(format: "%.1f", v)) \(units[i])"
    }
}
