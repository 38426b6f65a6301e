using System.Text.RegularExpressions;
using Npgsql;

namespace Tracker.ApiService.Storage;

/// <summary>
/// Bounds on every session of the API's pool, passed as startup options so they hold for the whole connection
/// (also after the pool's reset between uses): a lock wait ends after <see cref="LockTimeout"/> instead of holding a
/// request (and its rollup row locks) without end, and a transaction left open by a stuck or crashed caller is
/// ended after <see cref="IdleInTransactionSessionTimeout"/> instead of blocking rollups for hours. A value the
/// connection string's <c>Options</c> already sets is kept.
/// </summary>
public static partial class PostgresSessionSettings
{
    public const string LockTimeout = "5s";

    public const string IdleInTransactionSessionTimeout = "60s";

    public static void Apply(NpgsqlConnectionStringBuilder connectionString)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        var options = connectionString.Options ?? string.Empty;
        foreach (var (name, value) in new[] { ("lock_timeout", LockTimeout), ("idle_in_transaction_session_timeout", IdleInTransactionSessionTimeout) })
        {
            if (!SetsParameter(options, name))
            {
                options = $"{options} -c {name}={value}".TrimStart();
            }
        }

        connectionString.Options = options;
    }

    // PostgreSQL takes "-c name=value", "-cname=value" and "--name=value" alike.
    private static bool SetsParameter(string options, string name) =>
        ParameterSetting().Matches(options).Any(match => match.Groups["name"].Value.Equals(name, StringComparison.OrdinalIgnoreCase));

    [GeneratedRegex(@"(?:^|\s)(?:-c\s*|--)(?<name>[A-Za-z_.]+)=", RegexOptions.CultureInvariant)]
    private static partial Regex ParameterSetting();
}
