using System.Collections.Frozen;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Tracker.ApiService.Usage;

/// <summary>
/// A usage route's query parameters as it reads them: each reader records what is wrong with its parameter, and
/// <see cref="Problem"/> then answers all of them at once, by name.
/// </summary>
internal sealed class QueryValidation
{
    // The machine's IANA zone names, exactly as listed. FindSystemTimeZoneById would also take a path
    // ("Europe//Berlin", "../..."), and caches every name it is given for the life of the process: only listed
    // names get that far, so a caller cannot grow that cache or the answer cache with spellings of one zone.
    private static readonly FrozenSet<string> TimeZoneIds =
        TimeZoneInfo.GetSystemTimeZones().Where(zone => zone.HasIanaId).Select(zone => zone.Id).Append("UTC").ToFrozenSet(StringComparer.Ordinal);

    private readonly Dictionary<string, string[]> _errors = [];

    public bool IsValid => _errors.Count == 0;

    /// <summary>The 400 naming every bad parameter; null when all were good.</summary>
    public ValidationProblem? Problem => IsValid ? null : TypedResults.ValidationProblem(_errors, detail: "The query was not accepted; see errors.");

    /// <summary>Records <paramref name="message"/> for <paramref name="name"/>.</summary>
    public void Refuse(string name, string message) => _errors[name] = [message];

    /// <summary><paramref name="value"/>, which must be from 1 to <paramref name="maximum"/>.</summary>
    public int InRange(string name, int value, int maximum)
    {
        if (value < 1 || value > maximum)
        {
            Refuse(name, $"Must be an integer from 1 to {maximum}.");
        }

        return value;
    }

    /// <summary>The one of <paramref name="choices"/> that <paramref name="value"/> names (any case); <paramref name="fallback"/> when absent.</summary>
    public TEnum Choice<TEnum>(string name, string? value, TEnum fallback, params TEnum[] choices)
        where TEnum : struct, Enum
    {
        if (value is null)
        {
            return fallback;
        }

        foreach (var choice in choices)
        {
            if (string.Equals(choice.ToString(), value, StringComparison.OrdinalIgnoreCase))
            {
                return choice;
            }
        }

        Refuse(name, $"Must be one of: {string.Join(", ", choices.Select(choice => choice.ToString().ToLowerInvariant()))}.");
        return fallback;
    }

    /// <summary>The time zone <paramref name="id"/> names; null when it names none.</summary>
    public TimeZoneInfo? TimeZone(string name, string id)
    {
        if (TimeZoneIds.Contains(id) && TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone))
        {
            return zone;
        }

        Refuse(name, "Must be an IANA time zone name, like Europe/Berlin or UTC.");
        return null;
    }
}
