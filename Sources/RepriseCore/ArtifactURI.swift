/// Artifact URIs this server's proxy serves: the one reading of `mlflow-artifacts:` for the
/// server, its access rules and the client.
public enum ArtifactURI {
    public static let proxyScheme = "mlflow-artifacts:"

    /// The path under the proxy's root that a `mlflow-artifacts:` URI names, as written (still
    /// percent-encoded, leading `/` kept): `mlflow-artifacts:/1/abc` and
    /// `mlflow-artifacts://host:port/1/abc` both give `/1/abc` (the host is whichever name the
    /// client used to reach this server). Nil for any other URI.
    public static func proxyPath(_ uri: String) -> String? {
        guard uri.hasPrefix(proxyScheme) else { return nil }
        let rest = uri.dropFirst(proxyScheme.count)
        guard rest.hasPrefix("//") else { return String(rest) }
        let authorityAndPath = rest.dropFirst(2)
        return Validation.firstSlash(in: authorityAndPath).map { String(authorityAndPath[$0...]) } ?? ""
    }
}
