using System.Globalization;

namespace Tracker.Web.Components.Usage;

/// <summary>Numbers as the usage charts and tables write them.</summary>
internal static class ChartText
{
    /// <summary>An SVG coordinate.</summary>
    public static string Number(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    public static string Count(long count) => count.ToString("N0", CultureInfo.InvariantCulture);

    public static string Requests(long count) => count == 1 ? "1 request" : $"{Count(count)} requests";
}
