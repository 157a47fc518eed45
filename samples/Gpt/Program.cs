Console.WriteLine("gpt");
