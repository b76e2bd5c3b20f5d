import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs a helper program (git, python, nvidia-smi) and collects its output.
public enum Shell {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: String
        public var text: String { String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        public var ok: Bool { status == 0 }
    }

    /// Runs `argv` (looked up on PATH) in `cwd`. Returns nil when the program does not exist.
    @discardableResult
    public static func run(_ argv: [String], cwd: String? = nil, stdin: Data? = nil) -> Result? {
        guard let exe = which(argv[0]) else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = Array(argv.dropFirst())
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe()
        let err = Pipe()
        let inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        do { try p.run() } catch { return nil }
        if let stdin { inp.fileHandleForWriting.write(stdin) }
        try? inp.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty program cannot block on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        let errHandle = err.fileHandleForReading
        DispatchQueue.global().async {
            errBox.data = errHandle.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
    }

    public static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

func sha256Hex(_ data: some DataProtocol) -> String { DataHasher.hex(SHA256.hash(data: data)) }

/// The code a run used: the commit, the uncommitted changes to tracked files (as a binary patch) and
/// the untracked files (by name, size and hash).
public struct CodeState: Sendable {
    public var root: String
    public var remote: String
    public var commit: String
    public var branch: String
    public var patch: Data
    public var untracked: [ManifestEntry]
    /// The working directory relative to the repository root ("" at the root).
    public var workdir: String

    public var dirty: Bool { !patch.isEmpty || !untracked.isEmpty }

    /// The changed tracked files (from the patch's headers) and the untracked ones, for messages:
    /// at most `limit` named, then a count.
    public func changedFiles(limit: Int) -> String {
        var names: [String] = []
        for line in String(decoding: patch, as: UTF8.self).split(separator: "\n") where line.hasPrefix("diff --git a/") {
            // `diff --git a/<path> b/<path>`: the path after ` b/`.
            if let r = line.range(of: " b/", options: .backwards) { names.append(String(line[r.upperBound...]) + " (modified)") }
        }
        names += untracked.map { $0.path + " (untracked)" }
        if names.count <= limit { return names.joined(separator: ", ") }
        return names.prefix(limit).joined(separator: ", ") + " and \(names.count - limit) more"
    }
    public var patchSHA256: String { sha256Hex(patch) }

    /// Captures the repository that contains `cwd`; nil when it is not in a git work tree (or git is
    /// missing).
    public static func capture(cwd: String) -> CodeState? {
        guard let top = Shell.run(["git", "rev-parse", "--show-toplevel"], cwd: cwd), top.ok else { return nil }
        let root = top.text
        guard let head = Shell.run(["git", "rev-parse", "HEAD"], cwd: root), head.ok else { return nil }
        let branch = Shell.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd: root)?.text ?? ""
        let remote = stripCredentials(Shell.run(["git", "config", "--get", "remote.origin.url"], cwd: root)?.text ?? "")
        let patch = Shell.run(["git", "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"], cwd: root)?.stdout ?? Data()
        var untracked: [ManifestEntry] = []
        if let list = Shell.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd: root), list.ok {
            for name in list.stdout.split(separator: 0).map({ String(decoding: $0, as: UTF8.self) }).sorted() {
                if let (size, sha) = try? DataHasher.hashFile(root + "/" + name) {
                    untracked.append(ManifestEntry(path: name, size: size, sha256: sha))
                }
            }
        }
        let realCwd = (cwd as NSString).resolvingSymlinksInPath
        let realRoot = (root as NSString).resolvingSymlinksInPath
        var workdir = ""
        if realCwd.hasPrefix(realRoot + "/") { workdir = String(realCwd.dropFirst(realRoot.count + 1)) }
        return CodeState(
            root: root, remote: remote, commit: head.text, branch: branch == "HEAD" ? "" : branch, patch: patch, untracked: untracked,
            workdir: workdir)
    }

    /// `https://user:token@host/x.git` → `https://host/x.git`: tokens never reach the server.
    public static func stripCredentials(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let slash = url[scheme.upperBound...].firstIndex(of: "/") ?? url.endIndex
        guard at < slash else { return url }
        return String(url[..<scheme.upperBound]) + String(url[url.index(after: at)...])
    }
}

/// Where and on what a run ran.
public struct EnvironmentInfo: Sendable {
    public var os: String
    public var kernel: String
    public var arch: String
    public var cpu: String
    public var cpuCount: Int
    public var memoryBytes: UInt64
    public var gpu: String
    public var container: String
    public var python: String
    /// Dependency locks found in the working directory (and `pip freeze` of the Python in use).
    public var locks: [(name: String, content: Data)]

    public var lockDigest: String {
        sha256Hex(Data(locks.sorted { $0.name < $1.name }.map { "\($0.name)  \(sha256Hex($0.content))" }.joined(separator: "\n").utf8))
    }

    /// A digest of what makes two environments the same for a rerun: not memory size or core count
    /// alone, but system, interpreter, accelerator and the locked dependencies.
    public var digest: String {
        sha256Hex(Data([os, kernel, arch, cpu, gpu, container, python, lockDigest].joined(separator: "\n").utf8))
    }

    public var json: [String: String] {
        [
            "os": os, "kernel": kernel, "arch": arch, "cpu": cpu, "cpu_count": String(cpuCount), "memory_bytes": String(memoryBytes),
            "gpu": gpu, "container_image": container, "python": python, "lock_files": locks.map(\.name).sorted().joined(separator: ","),
            "lock_sha256": lockDigest, "digest": digest,
        ]
    }

    static let lockNames = [
        "requirements.txt", "requirements-dev.txt", "requirements.lock", "uv.lock", "poetry.lock", "Pipfile.lock", "pdm.lock",
        "environment.yml", "environment.yaml", "conda-lock.yml", "Package.resolved", "Cargo.lock", "package-lock.json", "renv.lock",
    ]

    public static func capture(cwd: String, repoRoot: String?, env: [String: String] = ProcessInfo.processInfo.environment)
        -> EnvironmentInfo
    {
        var u = utsname()
        uname(&u)
        func field<T>(_ t: T) -> String {
            withUnsafeBytes(of: t) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let osRelease = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        let pretty = osRelease.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
            .map { String($0.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpu = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? ""

        var gpu = ""
        if let r = Shell.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]), r.ok {
            gpu = describeGPUs(query: r.text, banner: Shell.run(["nvidia-smi"])?.text ?? "")
        }
        var container = env["REPRISE_CONTAINER_IMAGE"] ?? ""
        if container.isEmpty, FileManager.default.fileExists(atPath: "/.dockerenv") { container = "docker (image digest unknown)" }
        if container.isEmpty, FileManager.default.fileExists(atPath: "/run/.containerenv") { container = "podman (image digest unknown)" }

        let pythonExe = env["VIRTUAL_ENV"].map { "\($0)/bin/python" } ?? (Shell.which("python3") ?? Shell.which("python") ?? "")
        var python = ""
        var locks: [(String, Data)] = []
        if !pythonExe.isEmpty, let r = Shell.run([pythonExe, "-c", "import sys, platform; print(platform.python_implementation(), platform.python_version())"]), r.ok {
            python = r.text
            if let freeze = Shell.run([pythonExe, "-m", "pip", "freeze", "--all", "--disable-pip-version-check"]), freeze.ok {
                locks.append(("pip-freeze.txt", freeze.stdout))
            }
        }
        var seen = Set<String>()
        for dir in [cwd, repoRoot].compactMap({ $0 }) {
            for name in lockNames where !seen.contains(name) {
                if let data = FileManager.default.contents(atPath: dir + "/" + name) {
                    locks.append((name, data))
                    seen.insert(name)
                }
            }
        }
        return EnvironmentInfo(
            os: pretty ?? field(u.sysname), kernel: "\(field(u.sysname)) \(field(u.release))", arch: field(u.machine), cpu: cpu,
            cpuCount: ProcessInfo.processInfo.activeProcessorCount, memoryBytes: ProcessInfo.processInfo.physicalMemory, gpu: gpu,
            container: container, python: python, locks: locks)
    }

    /// One line for the GPUs from `nvidia-smi --query-gpu=name,driver_version,memory.total
    /// --format=csv,noheader` and the CUDA version from its banner, e.g.
    /// `NVIDIA H200, 570.124.06, 143771 MiB; CUDA 12.8`.
    public static func describeGPUs(query: String, banner: String) -> String {
        var gpu = query.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "; ")
        if let range = banner.range(of: "CUDA Version: ") {
            let version = banner[range.upperBound...].prefix { !$0.isWhitespace && $0 != "|" }
            if !version.isEmpty { gpu += (gpu.isEmpty ? "" : "; ") + "CUDA " + version }
        }
        return gpu
    }

    /// `name==version` lines of a pip freeze (or requirements) text.
    public static func packages(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let l = line.trimmingCharacters(in: .whitespaces)
            if l.isEmpty || l.hasPrefix("#") { continue }
            if let r = l.range(of: "==") {
                out[String(l[..<r.lowerBound]).lowercased()] = String(l[r.upperBound...])
            } else if let r = l.range(of: " @ ") {
                out[String(l[..<r.lowerBound]).lowercased()] = String(l[r.upperBound...])
            } else {
                out[l.lowercased()] = ""
            }
        }
        return out
    }

    /// Packages added, removed and changed between two freezes.
    public static func packageChanges(old: String, new: String) -> [String] {
        let a = packages(old)
        let b = packages(new)
        var out: [String] = []
        for k in Set(a.keys).union(b.keys).sorted() {
            switch (a[k], b[k]) {
            case (nil, let v?): out.append("+ \(k) \(v)")
            case (let v?, nil): out.append("- \(k) \(v)")
            case (let x?, let y?) where x != y: out.append("~ \(k) \(x) -> \(y)")
            default: break
            }
        }
        return out
    }
}
