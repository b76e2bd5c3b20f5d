import Foundation

/// A fresh folder for one test, removed by `remove()` or, at the latest, when the test process
/// exits: every one lives under a folder of the process's own (`reprise-tests-<pid>` in the system
/// temp dir), which an exit handler deletes whole. So stores a test leaves open to the end (a
/// backend factory's SQLite files) do not pile up in the temp dir run after run.
public struct TempDirectory: Sendable {
    public let path: String

    public init(prefix: String = "reprise-test") throws {
        path = Self.processFolder + "/\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// This process's folder, made (and its removal at exit registered) on first use.
    static let processFolder: String = {
        let folder = FileManager.default.temporaryDirectory.path + "/reprise-tests-\(getpid())"
        atexit { try? FileManager.default.removeItem(atPath: TempDirectory.processFolder) }
        return folder
    }()
}
