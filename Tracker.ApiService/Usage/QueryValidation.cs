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

    // Browsers name zones by ICU's (CLDR's) canonical ids, which keep names IANA has since replaced: Chromium reports
    // Europe/Kiev in Kyiv. Each is taken as the current name it stands for, when the machine lists that one.
    private static readonly FrozenDictionary<string, string> FormerNames = new Dictionary<string, string>
    {
        ["Africa/Asmera"] = "Africa/Asmara",
        ["America/Buenos_Aires"] = "America/Argentina/Buenos_Aires",
        ["America/Catamarca"] = "America/Argentina/Catamarca",
        ["America/Coral_Harbour"] = "America/Atikokan",
        ["America/Cordoba"] = "America/Argentina/Cordoba",
        ["America/Godthab"] = "America/Nuuk",
        ["America/Indianapolis"] = "America/Indiana/Indianapolis",
        ["America/Jujuy"] = "America/Argentina/Jujuy",
        ["America/Louisville"] = "America/Kentucky/Louisville",
        ["America/Mendoza"] = "America/Argentina/Mendoza",
        ["Asia/Calcutta"] = "Asia/Kolkata",
        ["Asia/Katmandu"] = "Asia/Kathmandu",
        ["Asia/Rangoon"] = "Asia/Yangon",
        ["Asia/Saigon"] = "Asia/Ho_Chi_Minh",
        ["Atlantic/Faeroe"] = "Atlantic/Faroe",
        ["Europe/Kiev"] = "Europe/Kyiv",
        ["Pacific/Enderbury"] = "Pacific/Kanton",
        ["Pacific/Ponape"] = "Pacific/Pohnpei",
        ["Pacific/Truk"] = "Pacific/Chuuk",
    }.Where(name => TimeZoneIds.Contains(name.Value)).ToFrozenDictionary(StringComparer.Ordinal);

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

    /// <summary>The time zone <paramref name="id"/> names (a former name as its current one); null when it names none.</summary>
    public TimeZoneInfo? TimeZone(string name, string id)
    {
        id = FormerNames.GetValueOrDefault(id, id);
        if (TimeZoneIds.Contains(id) && TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone))
        {
            return zone;
        }

        Refuse(name, "Must be an IANA time zone name, like Europe/Berlin or UTC.");
        return null;
    }
}
