import ArgumentParser
import Foundation
import RepriseCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Questions on the terminal (`/dev/tty`, so standard input stays free for data) and secrets read
/// from standard input.
enum Prompt {
    /// The terminal's settings while echo is off, restored if the user interrupts.
    nonisolated(unsafe) private static var saved = termios()
    nonisolated(unsafe) private static var savedFD: Int32 = -1

    /// Asks a question on the terminal and returns the answer (without the newline).
    static func line(_ question: String) throws -> String {
        try withTerminal { fd in
            writeAll(fd, question)
            return readLine(fd)
        }
    }

    /// Asks for a secret on the terminal with echo off, like getpass(3).
    static func secret(_ question: String) throws -> String {
        try withTerminal { fd in
            writeAll(fd, question)
            var t = termios()
            let isTTY = tcgetattr(fd, &t) == 0
            if isTTY {
                saved = t
                savedFD = fd
                var quiet = t
                quiet.c_lflag &= ~tcflag_t(ECHO)
                signal(SIGINT) { _ in
                    var t = Prompt.saved
                    _ = tcsetattr(Prompt.savedFD, TCSAFLUSH, &t)
                    _exit(130)
                }
                _ = tcsetattr(fd, TCSAFLUSH, &quiet)
            }
            let answer = readLine(fd)
            if isTTY {
                _ = tcsetattr(fd, TCSAFLUSH, &t)
                signal(SIGINT, SIG_DFL)
                savedFD = -1
                writeAll(fd, "\n")
            }
            return answer
        }
    }

    /// Asks for a new password twice.
    static func newPassword(_ question: String) throws -> String {
        let first = try secret(question)
        let again = try secret("Again: ")
        guard first == again else { throw CLIError("the two passwords differ; nothing was changed") }
        return first
    }

    /// All of standard input as lines, without their line ends (for --password-stdin and --with-token).
    static func stdinLines() -> [String] {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        var lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\n").map { line in
            line.hasSuffix("\r") ? String(line.dropLast()) : line
        }
        while lines.last == "" { lines.removeLast() }
        return lines
    }

    private static func withTerminal<T>(_ body: (Int32) throws -> T) throws -> T {
        let fd = open("/dev/tty", O_RDWR)
        guard fd >= 0 else {
            throw CLIError("there is no terminal to ask on; pass the value with an option or on standard input (see --help)")
        }
        defer { close(fd) }
        return try body(fd)
    }

    private static func writeAll(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            offset += n
        }
    }

    private static func readLine(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1 {
            if byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// This machine's host name, for token names.
func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "localhost" : name
}

/// A date from milliseconds since the epoch, as 2025-06-01 (UTC).
func day(_ millis: Int64) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withFullDate]
    return f.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
}

/// A date and time from milliseconds since the epoch, as 2025-06-01 14:03 (UTC).
func dayTime(_ millis: Int64) -> String {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyy-MM-dd HH:mm"
    return f.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
}

/// Milliseconds from a JSON number, or nil for null or a missing key.
func millis(_ v: JSONValue?) -> Int64? {
    switch v {
    case .int(let t)?: return t
    case .double(let d)?: return Int64(d)
    default: return nil
    }
}

/// Rows as aligned columns under a header.
func table(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
