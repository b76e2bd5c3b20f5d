import Foundation
import NIOCore
import RepriseArtifacts
import RepriseCore
import Testing

struct Chunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let parts: [[UInt8]]
    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: [[UInt8]]
        mutating func next() async throws -> ByteBuffer? {
            guard !rest.isEmpty else { return nil }
            return ByteBuffer(bytes: rest.removeFirst())
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: parts) }
}

@Suite("Local artifact repository")
struct LocalArtifactRepositoryTests {
    let root = FileManager.default.temporaryDirectory.path + "/reprise-artifacts-\(UUID().uuidString)"

    @Test func writeReadListDelete() async throws {
        let repo = LocalArtifactRepository(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = (0..<300_000).map { UInt8($0 % 251) }
        let written = try await repo.write(["1", "run", "artifacts", "dir", "blob.bin"], contents: Chunks(parts: [Array(data[..<100_000]), Array(data[100_000...])]))
        #expect(written == 300_000)
        #expect(try await repo.kind(["1", "run", "artifacts", "dir", "blob.bin"]) == .file(size: 300_000))
        #expect(try await repo.kind(["1", "run", "artifacts", "dir"]) == .directory)
        #expect(try await repo.kind(["nope"]) == .missing)
        var back: [UInt8] = []
        try await repo.read(["1", "run", "artifacts", "dir", "blob.bin"]) { back += Array($0.readableBytesView) }
        #expect(back == data)
        let listing = try #require(try await repo.list(["1", "run", "artifacts"]))
        #expect(listing == [ArtifactFileInfo(path: "dir", isDir: true, fileSize: nil)])
        #expect(try await repo.list(["1", "run", "artifacts", "dir", "blob.bin"]) == nil)
        #expect(try await repo.list(["missing"]) == nil)
        // Overwrite replaces the whole file.
        _ = try await repo.write(["1", "run", "artifacts", "dir", "blob.bin"], contents: Chunks(parts: [[1, 2, 3]]))
        #expect(try await repo.kind(["1", "run", "artifacts", "dir", "blob.bin"]) == .file(size: 3))
        try await repo.delete(["1", "run", "artifacts", "dir"])
        #expect(try await repo.kind(["1", "run", "artifacts", "dir"]) == .missing)
        try await repo.delete(["never", "there"])
    }

    @Test func componentsCannotLeaveTheRoot() async throws {
        let repo = LocalArtifactRepository(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // `../\u{301}x` is one `Character`-wise component with no "/" in it, and two to the kernel.
        for bad in [["..", "x"], ["a", "..", "..", "x"], ["a/b"], [""], ["."], ["../\u{301}x"], ["a/\u{1F3FB}b"], ["\u{600}/x"]] {
            await #expect(throws: RepriseError.self, "\(bad)") {
                _ = try await repo.write(bad, contents: Chunks(parts: [[1]]))
            }
        }
        await #expect(throws: RepriseError.self) { try await repo.delete([]) }
    }

    @Test func failedUploadLeavesNothing() async throws {
        struct Boom: Error {}
        struct Failing: AsyncSequence, Sendable {
            typealias Element = ByteBuffer
            struct AsyncIterator: AsyncIteratorProtocol {
                var sent = false
                mutating func next() async throws -> ByteBuffer? {
                    if sent { throw Boom() }
                    sent = true
                    return ByteBuffer(bytes: [1, 2, 3])
                }
            }
            func makeAsyncIterator() -> AsyncIterator { AsyncIterator() }
        }
        let repo = LocalArtifactRepository(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        await #expect(throws: Boom.self) { _ = try await repo.write(["d", "f.bin"], contents: Failing()) }
        #expect(try await repo.kind(["d", "f.bin"]) == .missing)
        #expect(try await repo.list(["d"]) == [])
    }

    @Test func constructionDoesNoIOAndPrepareCreatesTheRoot() async throws {
        let repo = LocalArtifactRepository(root: root + "/deep/er")
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(!FileManager.default.fileExists(atPath: root))
        #expect(try await repo.list([]) == nil)
        try await repo.prepare()
        try await repo.prepare()  // idempotent
        #expect(try await repo.list([]) == [])
    }

    /// Links planted in the store are never followed, listed or written through, and deleting a
    /// folder that holds one removes the link, not what it points to.
    @Test func linksAreNeverFollowed() async throws {
        let repo = LocalArtifactRepository(root: root + "/store")
        let outside = root + "/outside"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside + "/secret.txt"))
        _ = try await repo.write(["run", "a.txt"], contents: Chunks(parts: [Array("abc".utf8)]))
        try FileManager.default.createSymbolicLink(atPath: root + "/store/run/escape", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/store/run/file-link", withDestinationPath: outside + "/secret.txt")
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/store/run/.upload-1234"))
        #expect(try await repo.list(["run"]) == [ArtifactFileInfo(path: "a.txt", isDir: false, fileSize: 3)])
        for path in [["run", "escape", "secret.txt"], ["run", "file-link"]] {
            await #expect(throws: RepriseError.self) { try await repo.read(path) { _ in } }
            await #expect(throws: RepriseError.self) { _ = try await repo.write(path, contents: Chunks(parts: [[1]])) }
            await #expect(throws: RepriseError.self) { _ = try await repo.kind(path) }
        }
        await #expect(throws: RepriseError.self) { _ = try await repo.list(["run", "escape"]) }
        // A file where a folder is needed: not found, not a server error.
        let notFound = await #expect(throws: RepriseError.self) { _ = try await repo.kind(["run", "a.txt", "below"]) }
        #expect(notFound?.code == .resourceDoesNotExist)
        try await repo.delete(["run"])
        #expect(try await repo.kind(["run"]) == .missing)
        #expect(FileManager.default.contents(atPath: outside + "/secret.txt") == Data("secret".utf8))
    }
}
