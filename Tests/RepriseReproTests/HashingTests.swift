import Foundation
import RepriseCore
import Testing

@testable import RepriseRepro

@Suite("Data hashing")
struct HashingTests {
    func tempDir() throws -> String {
        let path = NSTemporaryDirectory() + "reprise-hash-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Known SHA-256 vectors (FIPS 180-2 examples and the empty string).
    @Test func knownVectors() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(String, Data)] = [
            ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Data()),
            ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Data("abc".utf8)),
            ("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            // One million 'a': longer than a read block, so the streaming path is exercised.
            ("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", Data(repeating: UInt8(ascii: "a"), count: 1_000_000)),
        ]
        for (i, (expected, data)) in cases.enumerated() {
            let path = "\(dir)/f\(i)"
            try data.write(to: URL(fileURLWithPath: path))
            let (size, sha) = try DataHasher.hashFile(path)
            #expect(sha == expected && size == Int64(data.count))
        }
        // Several blocks: 3 MiB + 1 byte of a repeating pattern, against Foundation-free reference below.
        var big = Data(count: 3 * 1024 * 1024 + 1)
        for i in 0..<big.count { big[i] = UInt8(i % 251) }
        try big.write(to: URL(fileURLWithPath: "\(dir)/big"))
        #expect(try DataHasher.hashFile("\(dir)/big").sha256 == sha256Hex(big))
    }

    @Test func manifestIsOrderedAndRootCoversEveryByte() async throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (path, text) in [("b.txt", "b"), ("a/z.txt", "z"), ("a/b.txt", "ab"), ("B.txt", "upper"), ("a b/ü.txt", "uml")] {
            let full = "\(dir)/data/\(path)"
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        }
        let d = try await DataHasher.hash(path: "data", workingDirectory: dir, progress: ProgressReporter(enabled: false))
        // Bytewise order: uppercase before lowercase, space before letters, nested paths by full path.
        #expect(d.manifest.map(\.path) == ["B.txt", "a b/ü.txt", "a/b.txt", "a/z.txt", "b.txt"])
        #expect(d.files == 5 && d.bytes == 1 + 1 + 2 + 5 + 3)
        #expect(d.root == DataHasher.rootDigest(d.manifest))
        #expect(DataHasher.parseManifest(d.manifestText) == d.manifest)
        // The same content hashed again gives the same root; one changed byte gives another.
        let again = try await DataHasher.hash(path: dir + "/data", workingDirectory: "/", progress: nil)
        #expect(again.root == d.root)
        try Data("Z".utf8).write(to: URL(fileURLWithPath: "\(dir)/data/a/z.txt"))
        let changed = try await DataHasher.hash(path: "data", workingDirectory: dir, progress: nil)
        #expect(changed.root != d.root)
        let c = changed.changes(from: d.manifest)
        #expect(c.changed == ["a/z.txt"] && c.added.isEmpty && c.removed.isEmpty)
        // A renamed file changes the root too (paths are covered, not only contents).
        try FileManager.default.moveItem(atPath: "\(dir)/data/b.txt", toPath: "\(dir)/data/c.txt")
        let renamed = try await DataHasher.hash(path: "data", workingDirectory: dir, progress: nil)
        #expect(renamed.changes(from: changed.manifest).added == ["c.txt"] && renamed.changes(from: changed.manifest).removed == ["b.txt"])
        // A single file is its own one-entry manifest.
        let one = try await DataHasher.hash(path: "data/c.txt", workingDirectory: dir, progress: nil)
        #expect(one.manifest.map(\.path) == ["c.txt"] && one.name == "c.txt")
        await #expect(throws: DataHashError.self) { _ = try await DataHasher.hash(path: "nope", workingDirectory: dir, progress: nil) }
    }

    @Test func toleranceArithmetic() throws {
        let abs = try Tolerance(parsing: "accuracy=abs:0.01")
        #expect(abs.kind == .abs && abs.amount == 0.01 && abs.metric == "accuracy")
        #expect(abs.accepts(expected: 0.90, actual: 0.91))  // exactly at the edge, despite 0.91 - 0.90 != 0.01 in binary
        #expect(abs.accepts(expected: 0.90, actual: 0.89))
        #expect(!abs.accepts(expected: 0.90, actual: 0.9101))
        let rel = try Tolerance(parsing: "loss=rel:0.5%")
        #expect(rel.kind == .rel && Swift.abs(rel.amount - 0.005) < 1e-15)
        #expect(rel.accepts(expected: 200, actual: 201) && !rel.accepts(expected: 200, actual: 201.01))
        #expect(rel.accepts(expected: -200, actual: -199))  // relative to the magnitude
        #expect(try Tolerance(parsing: "loss=rel:0.005") == rel)
        #expect(try Tolerance(parsing: "a=b=abs:1").metric == "a=b")
        #expect(rel.description == "loss=rel:0.5%" && abs.description == "accuracy=abs:0.01")
        #expect(!abs.accepts(expected: .nan, actual: 1) && abs.accepts(expected: .nan, actual: .nan))
        #expect(Tolerance.exact("m").accepts(expected: 0.1 + 0.2, actual: 0.3) && !Tolerance.exact("m").accepts(expected: 1, actual: 1.0001))
        for bad in ["accuracy", "=abs:1", "a=abs", "a=pct:1", "a=abs:-1", "a=abs:1%", "a=rel:x"] {
            #expect(throws: RepriseError.self) { _ = try Tolerance(parsing: bad) }
        }
        let cmp = MetricComparison(metric: "accuracy", expected: 0.9, actual: 0.85, tolerance: abs)
        #expect(!cmp.within && Swift.abs(cmp.delta! + 0.05) < 1e-12)
        #expect(!MetricComparison(metric: "m", expected: 1, actual: nil, tolerance: abs).within)
    }

    @Test func fingerprints() {
        let a = Fingerprint.inputs(commit: "c", patchSHA256: "p", dataDigest: "d", envDigest: "e", command: ["python", "t.py"], seed: "1")
        #expect(a == Fingerprint.inputs(commit: "c", patchSHA256: "p", dataDigest: "d", envDigest: "e", command: ["python", "t.py"], seed: "1"))
        #expect(a != Fingerprint.inputs(commit: "c", patchSHA256: "p", dataDigest: "d", envDigest: "e", command: ["python", "t.py"], seed: "2"))
        #expect(a != Fingerprint.inputs(commit: "c", patchSHA256: "p", dataDigest: "d", envDigest: "e", command: ["python t.py"], seed: "1"))
        #expect(Fingerprint.full(inputs: a, params: ["x": "1", "y": "2"]) == Fingerprint.full(inputs: a, params: ["y": "2", "x": "1"]))
        #expect(Fingerprint.full(inputs: a, params: ["x": "1"]) != Fingerprint.full(inputs: a, params: ["x": "2"]))
    }

    @Test func environmentCaptureOnThisMachine() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("numpy==1.26.4\nscikit-learn==1.5.0\n".utf8).write(to: URL(fileURLWithPath: dir + "/requirements.txt"))
        let env = EnvironmentInfo.capture(cwd: dir, repoRoot: nil)
        #expect(env.kernel.hasPrefix("Linux ") && !env.arch.isEmpty)
        #expect(env.cpuCount == ProcessInfo.processInfo.activeProcessorCount && env.memoryBytes == ProcessInfo.processInfo.physicalMemory)
        #expect(!env.os.isEmpty)
        #expect(env.locks.contains { $0.name == "requirements.txt" })
        #expect(env.digest == EnvironmentInfo.capture(cwd: dir, repoRoot: nil).digest, "stable on one machine")
        if Shell.which("python3") != nil { #expect(env.python.hasPrefix("CPython 3.") || env.python.hasPrefix("PyPy")) }
        #expect(
            EnvironmentInfo.packageChanges(old: "a==1\nb==2\nc==3\n", new: "a==1\nb==2.1\nd==4\n") == ["~ b 2 -> 2.1", "- c 3", "+ d 4"])
        // nvidia-smi's output format (this machine has no GPU; the device check covers a real one).
        let banner = "| NVIDIA-SMI 570.124.06             Driver Version: 570.124.06     CUDA Version: 12.8     |"
        #expect(
            EnvironmentInfo.describeGPUs(query: "NVIDIA H200, 570.124.06, 143771 MiB\nNVIDIA H200, 570.124.06, 143771 MiB\n", banner: banner)
                == "NVIDIA H200, 570.124.06, 143771 MiB; NVIDIA H200, 570.124.06, 143771 MiB; CUDA 12.8")
        #expect(EnvironmentInfo.describeGPUs(query: "", banner: "") == "")
        if Shell.which("nvidia-smi") == nil { #expect(env.gpu.isEmpty, "no GPU here, none recorded") }
        #expect(CodeState.stripCredentials("https://user:tok@github.com/o/r.git") == "https://github.com/o/r.git")
        #expect(CodeState.stripCredentials("git@github.com:o/r.git") == "git@github.com:o/r.git")
    }
}
