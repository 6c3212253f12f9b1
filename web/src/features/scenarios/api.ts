import { useQuery } from "@tanstack/react-query";
import { api, call } from "@/api/client";
import { keys } from "@/api/keys";

export function useCategories() {
  return useQuery({ queryKey: keys.categories(), queryFn: () => call(api.GET("/api/categories")) });
}
