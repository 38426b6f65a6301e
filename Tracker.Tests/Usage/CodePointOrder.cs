namespace Tracker.Tests.Usage;

/// <summary>Texts in Unicode code-point order: PostgreSQL's "C" collation over UTF-8, which the breakdown routes break
/// ties by. .NET's ordinal order differs where a character from U+E000 to U+FFFF meets one above U+FFFF.</summary>
internal sealed class CodePointOrder : IComparer<string>
{
    public static readonly CodePointOrder Instance = new();

    public int Compare(string? x, string? y)
    {
        var left = (x ?? string.Empty).EnumerateRunes();
        var right = (y ?? string.Empty).EnumerateRunes();
        while (true)
        {
            var hasLeft = left.MoveNext();
            var hasRight = right.MoveNext();
            if (!hasLeft || !hasRight)
            {
                return hasLeft.CompareTo(hasRight);
            }

            var order = left.Current.Value.CompareTo(right.Current.Value);
            if (order != 0)
            {
                return order;
            }
        }
    }
}
