import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The user's command, in its own process group: its output is streamed to ours and kept; SIGINT
/// and SIGTERM sent to `reprise` are forwarded to the whole group exactly once, and the run ends as
/// KILLED.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var captured = Data()
    private var interrupted = false
    private var readers: [Thread] = []
    private let readersDone = DispatchGroup()
    private var signalSources: [DispatchSourceSignal] = []

    private init(pid: pid_t) { self.pid = pid }

    static func spawn(_ argv: [String], cwd: String, env: [String: String]) throws -> ChildProcess {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw ReproError.failed("Cannot create pipes for the command's output.") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in [outPipe[0], outPipe[1], errPipe[0], errPipe[1]] { posix_spawn_file_actions_addclose(&actions, fd) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attr, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)

        // `sh` changes into the working directory, then becomes the command (exec), keeping its pid.
        let launch = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", cwd] + argv
        let cArgs = launch.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        // The signal handlers must be in place before the child exists.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, cArgs, cEnv)
        close(outPipe[1])
        close(errPipe[1])
        if rc != 0 {
            close(outPipe[0])
            close(errPipe[0])
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
            throw ReproError.failed("Cannot start \(argv[0]): \(String(cString: strerror(rc))). Is it installed and on PATH?")
        }
        let child = ChildProcess(pid: pid)
        child.pump(outPipe[0], to: 1)
        child.pump(errPipe[0], to: 2)
        for sig in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [child] in
                child.lock.withLock { child.interrupted = true }
                kill(-child.pid, sig)
            }
            source.resume()
            child.signalSources.append(source)
        }
        return child
    }

    private func pump(_ fd: Int32, to out: Int32) {
        readersDone.enter()
        let t = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                buffer.withUnsafeBytes { raw in
                    var off = 0
                    while off < n {
                        let w = write(out, raw.baseAddress! + off, n - off)
                        if w <= 0 { break }
                        off += w
                    }
                }
                lock.withLock { captured.append(contentsOf: buffer[0..<n]) }
            }
            close(fd)
            readersDone.leave()
        }
        t.start()
        readers.append(t)
    }

    /// Waits for the command to end. Returns its exit code (128 + signal when a signal ended it) and
    /// whether it was interrupted through us.
    func wait() async -> (Int32, Bool) {
        let pid = self.pid
        let status: Int32 = await withCheckedContinuation { cont in
            Thread {
                var st: Int32 = 0
                while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
                cont.resume(returning: st)
            }.start()
        }
        readersDone.wait()
        for s in signalSources { s.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let wasInterrupted = lock.withLock { interrupted }
        return (code, wasInterrupted || (!exited && [SIGINT, SIGTERM, SIGKILL].contains(status & 0x7f)))
    }

    func output() -> Data { lock.withLock { captured } }
}
