import Foundation
import RepriseCore

/// Fingerprints that identify a run's inputs, for duplicate detection.
public enum Fingerprint {
    /// Over code (commit and patch), data digests, environment digest, command and seed.
    public static func inputs(commit: String, patchSHA256: String, dataDigest: String, envDigest: String, command: [String], seed: String)
        -> String
    {
        let text = [
            "commit=\(commit)", "patch=\(patchSHA256)", "data=\(dataDigest)", "env=\(envDigest)",
            "command=\(JSONValue.array(command.map(JSONValue.string)).jsonString)", "seed=\(seed)",
        ].joined(separator: "\n")
        return sha256Hex(Data(text.utf8))
    }

    /// The inputs fingerprint plus the params the run logged.
    public static func full(inputs: String, params: [String: String]) -> String {
        let text = (["inputs=\(inputs)"] + params.keys.sorted().map { "param.\($0)=\(params[$0]!)" }).joined(separator: "\n")
        return sha256Hex(Data(text.utf8))
    }

    /// A digest over several data inputs' root digests (order of declaration kept).
    public static func data(_ digests: [DataDigest]) -> String {
        digests.isEmpty ? "" : sha256Hex(Data(digests.map { "\($0.path)=\($0.root)" }.joined(separator: "\n").utf8))
    }
}
