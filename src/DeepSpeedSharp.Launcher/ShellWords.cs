using System.Text;
using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Launcher;

/// <summary>POSIX-shell word splitting (for --launcher_args) and quoting (for commands run by a remote shell or printed).</summary>
public static partial class ShellWords
{
    [GeneratedRegex(@"^[A-Za-z0-9_@%+=:,./-]+$")]
    private static partial Regex Safe();

    /// <summary>Quotes <paramref name="word"/> so that sh reads it back as one word, unchanged.</summary>
    public static string Quote(string word) => word.Length > 0 && Safe().IsMatch(word) ? word : "'" + word.Replace("'", "'\\''") + "'";

    /// <summary>Joins words into a command line sh would split back into the same words.</summary>
    public static string Join(IEnumerable<string> words) => string.Join(" ", words.Select(Quote));

    /// <summary>Splits like sh does (single and double quotes, backslash escapes; no expansions).</summary>
    /// <exception cref="FormatException">An unterminated quote.</exception>
    public static List<string> Split(string text)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord) { words.Add(current.ToString()); current.Clear(); inWord = false; }
                continue;
            }
            inWord = true;
            if (c == '\'')
            {
                int end = text.IndexOf('\'', i + 1);
                if (end < 0) throw new FormatException($"unterminated ' in '{text}'.");
                current.Append(text, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '"')
            {
                i++;
                for (; i < text.Length && text[i] != '"'; i++)
                {
                    if (text[i] == '\\' && i + 1 < text.Length && text[i + 1] is '"' or '\\' or '$' or '`') i++;
                    current.Append(text[i]);
                }
                if (i >= text.Length) throw new FormatException($"unterminated \" in '{text}'.");
            }
            else if (c == '\\' && i + 1 < text.Length) current.Append(text[++i]);
            else current.Append(c);
        }
        if (inWord) words.Add(current.ToString());
        return words;
    }
}
